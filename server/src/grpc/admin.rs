//! `basalt.v1.AdminService`: datasources and segments.

use std::sync::Arc;
use std::time::Instant;

use basalt_engine::admin::DatasourceInfo;
use basalt_engine::catalog::SegmentRecord;
use basalt_engine::engine::Engine;
use basalt_proto::v1::admin_service_server::AdminService;
use basalt_proto::v1::{
    CreateDatasourceRequest, Datasource, DropDatasourceRequest, DropDatasourceResponse,
    DropIntervalRequest, DropIntervalResponse, GetDatasourceRequest, HealthRequest, HealthResponse,
    ListDatasourcesRequest, ListDatasourcesResponse, ListSegmentsRequest, ListSegmentsResponse,
    SegmentId, SegmentInfo,
};
use tonic::{Request, Response, Status};

use super::convert::status_from;

/// The admin service over one engine handle.
#[derive(Debug, Clone)]
pub struct AdminApi {
    engine: Arc<Engine>,
    started: Instant,
}

impl AdminApi {
    /// A service administering `engine`.
    pub fn new(engine: Arc<Engine>, started: Instant) -> AdminApi {
        AdminApi { engine, started }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Engine) -> basalt_engine::Result<T> + Send + 'static,
    ) -> Result<T, Status> {
        let engine = self.engine.clone();
        tokio::task::spawn_blocking(move || f(&engine))
            .await
            .map_err(|e| Status::internal(format!("admin task failed: {e}")))?
            .map_err(status_from)
    }
}

fn datasource_message(info: DatasourceInfo) -> Datasource {
    Datasource {
        name: info.name,
        spec_json: info.spec.map(|s| s.to_string()).unwrap_or_default(),
        segments: info.segments.len() as u64,
        rows: info.num_rows,
        size_bytes: info.size_bytes,
    }
}

fn segment_message(r: SegmentRecord) -> SegmentInfo {
    SegmentInfo {
        name: r.id.to_string(),
        id: Some(SegmentId {
            datasource: r.id.datasource,
            start_ms: r.id.interval.start,
            end_ms: r.id.interval.end,
            version: r.id.version.0,
            partition: r.id.partition,
        }),
        num_rows: r.num_rows,
        size_bytes: r.size_bytes,
    }
}

#[tonic::async_trait]
impl AdminService for AdminApi {
    async fn create_datasource(
        &self,
        request: Request<CreateDatasourceRequest>,
    ) -> Result<Response<Datasource>, Status> {
        let spec = request.into_inner().spec_json;
        let info = self
            .blocking(move |e| {
                let name = e.create_datasource(&spec)?;
                e.datasource_info(&name)
            })
            .await?;
        Ok(Response::new(datasource_message(info)))
    }

    async fn get_datasource(
        &self,
        request: Request<GetDatasourceRequest>,
    ) -> Result<Response<Datasource>, Status> {
        let name = request.into_inner().name;
        let info = self.blocking(move |e| e.datasource_info(&name)).await?;
        Ok(Response::new(datasource_message(info)))
    }

    async fn list_datasources(
        &self,
        _request: Request<ListDatasourcesRequest>,
    ) -> Result<Response<ListDatasourcesResponse>, Status> {
        let infos = self
            .blocking(|e| {
                e.datasource_names()?
                    .iter()
                    .map(|n| e.datasource_info(n))
                    .collect::<basalt_engine::Result<Vec<_>>>()
            })
            .await?;
        Ok(Response::new(ListDatasourcesResponse {
            datasources: infos.into_iter().map(datasource_message).collect(),
        }))
    }

    async fn drop_datasource(
        &self,
        request: Request<DropDatasourceRequest>,
    ) -> Result<Response<DropDatasourceResponse>, Status> {
        let name = request.into_inner().name;
        self.blocking(move |e| e.drop_datasource(&name)).await?;
        Ok(Response::new(DropDatasourceResponse {}))
    }

    async fn list_segments(
        &self,
        request: Request<ListSegmentsRequest>,
    ) -> Result<Response<ListSegmentsResponse>, Status> {
        let ds = request.into_inner().datasource;
        let segments = self
            .blocking(move |e| {
                if ds.is_empty() {
                    e.data_dir().catalog().used_segments(None)
                } else {
                    Ok(e.datasource_info(&ds)?.segments)
                }
            })
            .await?;
        Ok(Response::new(ListSegmentsResponse {
            segments: segments.into_iter().map(segment_message).collect(),
        }))
    }

    async fn drop_interval(
        &self,
        request: Request<DropIntervalRequest>,
    ) -> Result<Response<DropIntervalResponse>, Status> {
        let r = request.into_inner();
        let n = self
            .blocking(move |e| e.drop_interval(&r.datasource, &r.interval))
            .await?;
        Ok(Response::new(DropIntervalResponse {
            segments_dropped: n as u64,
        }))
    }

    async fn health(
        &self,
        _request: Request<HealthRequest>,
    ) -> Result<Response<HealthResponse>, Status> {
        let healthy = self
            .blocking(|e| e.data_dir().catalog().data_version().map(|_| ()))
            .await
            .is_ok();
        Ok(Response::new(HealthResponse {
            healthy,
            version: env!("CARGO_PKG_VERSION").to_string(),
            uptime_seconds: self.started.elapsed().as_secs(),
        }))
    }
}
