//! `basalt sql` and `basalt query`: command-line clients of a running server's gRPC API,
//! printing the result as a table, JSON or CSV.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampMillisecondType};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use basalt_proto::v1::query_service_client::QueryServiceClient;
use basalt_proto::v1::{NativeQueryRequest, QueryResponse, SqlParameter, SqlQueryRequest};
use serde_json::{Map, Value};

/// Output format of the client commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// An aligned text table.
    Table,
    /// A JSON array of row objects.
    Json,
    /// CSV with a header line.
    Csv,
}

/// Where and how to reach the server.
#[derive(Debug, clap::Args)]
pub struct ClientArgs {
    /// gRPC address of the server.
    #[arg(
        long,
        env = "BASALT_GRPC_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    pub server: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    /// Give up after this many seconds (sent to the server as the gRPC deadline).
    #[arg(long)]
    pub timeout_secs: Option<u64>,
}

/// Arguments of `basalt sql`.
#[derive(Debug, clap::Args)]
pub struct SqlArgs {
    /// The SQL statement.
    pub query: String,
    /// A value for the next `?` placeholder, as TYPE:VALUE (e.g. `VARCHAR:host_1`,
    /// `BIGINT:42`, `TIMESTAMP:2024-01-01 00:00:00`); repeat in placeholder order.
    #[arg(long = "param")]
    pub params: Vec<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Arguments of `basalt query`.
#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    /// File holding a Druid native query (JSON); `-` reads standard input.
    pub file: PathBuf,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Run `basalt sql`.
pub fn sql(args: SqlArgs) -> anyhow::Result<ExitCode> {
    let mut parameters = Vec::new();
    for p in &args.params {
        let Some((ty, value)) = p.split_once(':') else {
            bail!("--param {p:?} must be TYPE:VALUE, e.g. VARCHAR:foo or BIGINT:42");
        };
        let ty = ty.trim().to_ascii_uppercase();
        let value = match ty.as_str() {
            "BIGINT" | "INTEGER" | "SMALLINT" | "TINYINT" | "DOUBLE" | "FLOAT" | "DECIMAL"
            | "REAL" | "BOOLEAN" => serde_json::from_str::<Value>(value.trim())
                .with_context(|| format!("--param {p:?}: not a {ty} value"))?,
            _ => Value::String(value.to_string()),
        };
        parameters.push(SqlParameter {
            r#type: ty,
            value_json: value.to_string(),
        });
    }
    let request = SqlQueryRequest {
        query: args.query,
        parameters,
        context_json: String::new(),
    };
    let client = args.client;
    run_client(&client, move |mut c| async move {
        Ok(c.sql(request).await?.into_inner())
    })
}

/// Run `basalt query`.
pub fn query(args: QueryArgs) -> anyhow::Result<ExitCode> {
    let text = if args.file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading the query from stdin")?
    } else {
        std::fs::read_to_string(&args.file)
            .with_context(|| format!("reading {}", args.file.display()))?
    };
    let request = NativeQueryRequest { query_json: text };
    let client = args.client;
    run_client(&client, move |mut c| async move {
        Ok(c.native(request).await?.into_inner())
    })
}

type Client = QueryServiceClient<tonic::transport::Channel>;

fn run_client<F, Fut>(args: &ClientArgs, call: F) -> anyhow::Result<ExitCode>
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = Result<tonic::Streaming<QueryResponse>, tonic::Status>>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let batches = runtime.block_on(async {
        let mut endpoint = tonic::transport::Endpoint::from_shared(args.server.clone())
            .with_context(|| format!("--server {:?} is not a valid URL", args.server))?
            .connect_timeout(Duration::from_secs(5));
        if let Some(t) = args.timeout_secs {
            endpoint = endpoint.timeout(Duration::from_secs(t));
        }
        let channel = endpoint
            .connect()
            .await
            .with_context(|| format!("cannot connect to the Basalt server at {}", args.server))?;
        let client = QueryServiceClient::new(channel)
            .max_decoding_message_size(crate::grpc::MAX_MESSAGE_BYTES);
        let mut stream = match call(client).await {
            Ok(s) => s,
            Err(status) => bail!("{}: {}", code_name(status.code()), status.message()),
        };
        let mut bytes = Vec::new();
        loop {
            match stream.message().await {
                Ok(Some(m)) => bytes.extend_from_slice(&m.arrow_ipc),
                Ok(None) => break,
                Err(status) => bail!("{}: {}", code_name(status.code()), status.message()),
            }
        }
        crate::grpc::convert::ipc_to_batches(bytes)
            .map_err(|s| anyhow::anyhow!("bad answer from the server: {}", s.message()))
    })?;
    let mut out = std::io::stdout().lock();
    render(&batches, args.format, &mut out)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn code_name(code: tonic::Code) -> String {
    format!("{code:?}")
}

/// One cell as JSON (`null` for null).
fn cell(array: &dyn Array, row: usize) -> Value {
    if array.is_null(row) {
        return Value::Null;
    }
    match array.data_type() {
        DataType::Int64 => Value::from(array.as_primitive::<Int64Type>().value(row)),
        DataType::Float64 => Value::from(array.as_primitive::<Float64Type>().value(row)),
        DataType::Boolean => Value::from(array.as_boolean().value(row)),
        DataType::Utf8 => Value::from(array.as_string::<i32>().value(row)),
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            Value::from(basalt_engine::time::format_iso_millis(
                array.as_primitive::<TimestampMillisecondType>().value(row),
            ))
        }
        other => Value::from(format!("<{other}>")),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Print batches in `format`.
pub fn render(
    batches: &[RecordBatch],
    format: OutputFormat,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let Some(first) = batches.first() else {
        return Ok(());
    };
    let schema = first.schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let rows: Vec<Vec<Value>> = batches
        .iter()
        .flat_map(|b| {
            (0..b.num_rows()).map(move |r| {
                b.columns()
                    .iter()
                    .map(|c| cell(c.as_ref(), r))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    match format {
        OutputFormat::Json => {
            let objects: Vec<Value> = rows
                .into_iter()
                .map(|r| {
                    Value::Object(
                        names
                            .iter()
                            .map(|n| n.to_string())
                            .zip(r)
                            .collect::<Map<_, _>>(),
                    )
                })
                .collect();
            serde_json::to_writer_pretty(&mut *out, &objects)?;
            writeln!(out)?;
        }
        OutputFormat::Csv => {
            let line = |cells: Vec<String>| {
                cells
                    .into_iter()
                    .map(|c| {
                        if c.contains([',', '"', '\n', '\r']) {
                            format!("\"{}\"", c.replace('"', "\"\""))
                        } else {
                            c
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            };
            writeln!(
                out,
                "{}",
                line(names.iter().map(|s| s.to_string()).collect())
            )?;
            for r in &rows {
                writeln!(out, "{}", line(r.iter().map(text).collect()))?;
            }
        }
        OutputFormat::Table => {
            let cells: Vec<Vec<String>> =
                rows.iter().map(|r| r.iter().map(text).collect()).collect();
            let mut widths: Vec<usize> = names.iter().map(|n| n.chars().count()).collect();
            for r in &cells {
                for (w, c) in widths.iter_mut().zip(r) {
                    *w = (*w).max(c.chars().count());
                }
            }
            let numeric: Vec<bool> = schema
                .fields()
                .iter()
                .map(|f| matches!(f.data_type(), DataType::Int64 | DataType::Float64))
                .collect();
            let pad = |s: &str, w: usize, right: bool| {
                let n = s.chars().count();
                let fill = " ".repeat(w.saturating_sub(n));
                if right {
                    format!("{fill}{s}")
                } else {
                    format!("{s}{fill}")
                }
            };
            let header: Vec<String> = names
                .iter()
                .zip(&widths)
                .map(|(n, &w)| pad(n, w, false))
                .collect();
            writeln!(out, "{}", header.join(" | ").trim_end())?;
            let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
            writeln!(out, "{}", rule.join("-+-"))?;
            for r in &cells {
                let line: Vec<String> = r
                    .iter()
                    .zip(&widths)
                    .zip(&numeric)
                    .map(|((c, &w), &num)| pad(c, w, num))
                    .collect();
                writeln!(out, "{}", line.join(" | ").trim_end())?;
            }
            writeln!(
                out,
                "({} row{})",
                cells.len(),
                if cells.len() == 1 { "" } else { "s" }
            )?;
        }
    }
    Ok(())
}
