//! PATCH bodies: a field left out means "keep", `null` means "clear", a value means "set".

use serde::{Deserialize, Deserializer};

/// `#[serde(default, deserialize_with = "crate::domain::patch::nullable")]` on an
/// `Option<Option<T>>` field: absent → `None`, `null` → `Some(None)`, a value → `Some(Some(v))`.
pub fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Patch {
        #[serde(default, deserialize_with = "super::nullable")]
        model: Option<Option<String>>,
    }

    #[test]
    fn absent_null_and_a_value_are_three_different_things() {
        let p: Patch = serde_json::from_str("{}").unwrap();
        assert_eq!(p.model, None);
        let p: Patch = serde_json::from_str(r#"{"model": null}"#).unwrap();
        assert_eq!(p.model, Some(None));
        let p: Patch = serde_json::from_str(r#"{"model": "m"}"#).unwrap();
        assert_eq!(p.model, Some(Some("m".into())));
    }
}
