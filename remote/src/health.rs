//! The gRPC health checking protocol (`grpc.health.v1`) for every openduck
//! server, so that load balancers and Kubernetes probes can ask whether it
//! takes calls: SERVING once it serves, NOT_SERVING from the moment it
//! starts to drain. The answer covers the server as a whole (service `""`)
//! and its Flight service (`arrow.flight.protocol.FlightService`).

use arrow_flight::flight_service_server::FlightServiceServer;
use tonic::server::NamedService;
use tonic_health::pb::health_server::{Health as HealthService, HealthServer};
use tonic_health::server::{health_reporter, HealthReporter};
use tonic_health::ServingStatus;

/// The path prefix of the health service's calls, which need no credentials.
pub const HEALTH_PATH_PREFIX: &str = "/grpc.health.v1.Health/";

/// What a server answers to health checks.
#[derive(Debug, Clone)]
pub struct Health {
    reporter: HealthReporter,
}

impl Health {
    /// A health service that answers SERVING, and its handle.
    pub async fn serving() -> (Health, HealthServer<impl HealthService>) {
        let (reporter, service) = health_reporter();
        let health = Health { reporter };
        health.set(ServingStatus::Serving).await;
        (health, service)
    }

    /// From now on, NOT_SERVING: the server drains and takes no new calls.
    pub async fn draining(&self) {
        self.set(ServingStatus::NotServing).await;
    }

    async fn set(&self, status: ServingStatus) {
        let flight = <FlightServiceServer<crate::server::ExecutorService> as NamedService>::NAME;
        for service in ["", flight] {
            self.reporter.set_service_status(service, status).await;
        }
    }
}
