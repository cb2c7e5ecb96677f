//! `GET|POST|DELETE /<provider>/sandbox/faults`: the fault switches' admin API.

use axum::{
    Json, Router,
    body::Bytes,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};

use super::{FaultCell, Faults, Spec};

/// `GET|POST|DELETE /sandbox/faults` for a simulator.
pub fn admin_router(cell: FaultCell, spec: &'static Spec) -> Router {
    Router::new()
        .route(
            "/sandbox/faults",
            get(get_faults).post(set_faults).delete(clear_faults),
        )
        .with_state((cell, spec))
}

type AdminState = State<(FaultCell, &'static Spec)>;

fn admin_error(why: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(serde_json::json!({ "message": why })),
    )
        .into_response()
}

async fn get_faults(State((cell, _)): AdminState) -> Response {
    Json(cell.get()).into_response()
}

async fn set_faults(State((cell, spec)): AdminState, body: Bytes) -> Response {
    let faults: Faults = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => return admin_error(&format!("Invalid faults: {e}")),
    };
    match cell.set(faults, spec.support) {
        Ok(()) => Json(cell.get()).into_response(),
        Err(why) => admin_error(&format!("{}: {why}", spec.provider)),
    }
}

async fn clear_faults(State((cell, _)): AdminState) -> Response {
    cell.clear();
    Json(cell.get()).into_response()
}
