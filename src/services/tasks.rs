//! tasks: rules of this part of the tenant domain (see `services`).
