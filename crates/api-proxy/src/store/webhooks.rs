//! The webhook side of the API's store: events received, deliveries listed and replayed, the signing key.

use std::time::Duration;

use wgate_queue::{DeliveryFilter, DeliveryPage, DeliveryReplay, NewEvent, Received};
use wgate_types::{JobId, TenantId};

use super::BoundedStore;
use crate::error::ApiError;

/// A filtered listing looks through many records: it gets this long.
const LISTING_BOUND: Duration = Duration::from_secs(5);

impl BoundedStore {
    pub async fn receive_event(&self, event: &NewEvent<'_>) -> Result<Received, ApiError> {
        self.call_within("receive_event", self.write_bound(), self.inner.receive_event(event)).await
    }

    pub async fn tenant_deliveries(
        &self,
        tenant: &TenantId,
        filter: &DeliveryFilter,
        skip: usize,
        take: usize,
    ) -> Result<DeliveryPage, ApiError> {
        self.call_within("deliveries", LISTING_BOUND, self.inner.tenant_deliveries(tenant, filter, skip, take)).await
    }

    pub async fn replay_delivery(&self, id: JobId, tenant: &TenantId) -> Result<DeliveryReplay, ApiError> {
        self.call_within("replay_delivery", self.write_bound(), self.inner.replay_delivery(id, Some(tenant))).await
    }

    pub async fn webhook_signing_key(&self) -> Result<String, ApiError> {
        self.call("webhook_signing_key", self.inner.webhook_signing_key()).await
    }
}
