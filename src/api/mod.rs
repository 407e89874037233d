//! The HTTP API: routes and their handlers (parse, call a service, shape the response).

mod admin;
mod auth;
mod error;
pub mod extract;
mod members;
pub mod middleware;
mod ops;
pub mod principal;
mod tenant;

use actix_web::web;

pub use error::ApiError;

/// Registers every route. Shared by the server and anything that builds the same app.
pub fn configure(cfg: &mut web::ServiceConfig) {
    // Resources (not bare routes), so a known path with the wrong method is a 405, not a 404.
    cfg.service(web::resource("/healthz").get(ops::healthz))
        .service(web::resource("/readyz").get(ops::readyz))
        .service(web::resource("/version").get(ops::version))
        .service(web::resource("/metrics").get(ops::metrics))
        .service(
            web::scope("/api")
                .service(web::resource("/tenant").get(tenant::current))
                .service(web::resource("/auth/login").post(auth::login))
                .service(web::resource("/auth/logout").post(auth::logout))
                .service(web::resource("/auth/me").get(auth::me))
                .service(
                    web::resource("/admin/tenants")
                        .get(admin::list)
                        .post(admin::create),
                )
                .service(
                    web::resource("/admin/tenants/{slug}")
                        .get(admin::get)
                        .delete(admin::delete),
                )
                .service(web::resource("/admin/tenants/{slug}/suspend").post(admin::suspend))
                .service(web::resource("/admin/tenants/{slug}/resume").post(admin::resume))
                .service(
                    web::resource("/members")
                        .get(members::list)
                        .post(members::add),
                )
                .service(
                    web::resource("/members/{user_id}")
                        .patch(members::change)
                        .delete(members::remove),
                ),
        );
}
