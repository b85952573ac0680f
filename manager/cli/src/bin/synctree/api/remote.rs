//! The node commands, run through the API of the node that holds the store:
//! the same arguments, the same output, the same errors.

use std::path::Path;

use hyper::Method;

use super::client::{ApiClient, segment};
use super::endpoint::{self, Endpoint};
use super::routes::ContextsJson;
use crate::error::{CliError, context};
use crate::net::{SyncOutcome, SyncRequest, SyncResults};
use crate::{NodeCommand, data, jsonl, net, root};

/// Runs `command` through the API at `endpoint`.
pub(crate) async fn run(dir: &Path, at: Endpoint, command: NodeCommand) -> Result<(), CliError> {
    let client = ApiClient::new(at.addr, endpoint::existing_token(dir));
    match command {
        NodeCommand::Put(args) => {
            let path = entry_path(&args.context, &args.key)?;
            let line = client
                .call(Method::PUT, &path, args.value.into_bytes())
                .await?;
            print_line_if(&line, args.json)
        }
        NodeCommand::Del(args) => {
            let path = entry_path(&args.context, &args.key)?;
            let line = client.call(Method::DELETE, &path, Vec::new()).await?;
            print_line_if(&line, args.json)
        }
        NodeCommand::Get(args) => {
            let path = format!(
                "{}?json={}",
                entry_path(&args.context, &args.key)?,
                args.json
            );
            let answer = client.call(Method::GET, &path, Vec::new()).await?;
            match args.json {
                true => crate::output::emit_bytes(&answer),
                false => data::print_value(&answer),
            }
        }
        NodeCommand::Contexts(args) => {
            let answer = client.call(Method::GET, "/v1/contexts", Vec::new()).await?;
            let listed: ContextsJson = parse(&answer)?;
            data::print_contexts(&listed.contexts, args.json)
        }
        NodeCommand::Root(args) => {
            let path = format!(
                "{}/root?verify={}",
                context_path(&args.context)?,
                args.verify
            );
            let answer = client.call(Method::GET, &path, Vec::new()).await?;
            let described: root::RootJson = parse(&answer)?;
            root::print(&described, args.json)?;
            match described.verified {
                Some(false) => Err(CliError::Remote {
                    kind: "failed".to_owned(),
                    message: format!("context `{}`: index and entries differ", described.context),
                }),
                _ => Ok(()),
            }
        }
        NodeCommand::Export(args) => {
            let path = format!("{}/export", context_path(&args.context)?);
            let lines = client.call(Method::GET, &path, Vec::new()).await?;
            crate::output::emit_bytes(&lines)
        }
        NodeCommand::Import(args) => {
            let name = context(&args.context)?;
            let path = format!(
                "{}/import?accept_future_versions={}",
                context_path(&args.context)?,
                args.accept_future_versions
            );
            let body = jsonl::read_input(&args.file)?;
            let answer = client.call(Method::POST, &path, body).await?;
            jsonl::print_imported(&name, &parse(&answer)?, args.json)
        }
        NodeCommand::Sync(args) => {
            let request = SyncRequest {
                peer: Some(args.peer.clone()),
                context: args.context.clone(),
                protocol: args.protocol,
            };
            let body = serde_json::to_vec(&request)?;
            let answer = client.call(Method::POST, "/v1/sync", body).await?;
            let outcomes: Vec<SyncOutcome> = parse(&answer)?;
            net::finish_sync(&args.peer, results(outcomes)?, args.json)
        }
        NodeCommand::Status(args) => {
            let answer = client.call(Method::GET, "/v1/status", Vec::new()).await?;
            crate::status::print_remote(&answer, args.json)
        }
        NodeCommand::Gen(_) => Err(CliError::NotRemote {
            dir: dir.to_owned(),
            command: "gen",
        }),
        NodeCommand::Serve(_) => Err(CliError::InUse(dir.to_owned())),
        NodeCommand::Config(args) => crate::config::print(dir, &args),
        NodeCommand::Id(args) => crate::identity::run(dir, &args),
    }
}

/// The API's outcomes as the local `sync` would have them.
fn results(outcomes: Vec<SyncOutcome>) -> Result<SyncResults, CliError> {
    outcomes
        .into_iter()
        .map(|o| {
            let name = context(&o.context)?;
            let result = match (o.report, o.error) {
                (Some(report), _) => Ok(report),
                (None, error) => Err(CliError::Remote {
                    kind: "failed".to_owned(),
                    message: synctree_primitives::wire::escape_untrusted(
                        &error.unwrap_or_else(|| "no report".to_owned()),
                    ),
                }),
            };
            Ok((name, result))
        })
        .collect()
}

/// Prints the entry the node answered (an export line) when `--json` asked for it.
fn print_line_if(line: &[u8], json: bool) -> Result<(), CliError> {
    match json {
        true => crate::output::emit_bytes(line),
        false => Ok(()),
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, CliError> {
    serde_json::from_slice(body).map_err(CliError::Json)
}

fn context_path(name: &str) -> Result<String, CliError> {
    let checked = context(name)?;
    Ok(format!("/v1/contexts/{}", segment(checked.as_str())))
}

fn entry_path(context_name: &str, key: &str) -> Result<String, CliError> {
    Ok(format!(
        "{}/entries/{}",
        context_path(context_name)?,
        segment(key)
    ))
}
