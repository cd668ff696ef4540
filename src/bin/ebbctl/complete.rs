//! Shell completion: the shell asks ebbctl itself (clap_complete's dynamic completion,
//! `COMPLETE=<shell> ebbctl -- <words>`), so job and queue names come from the server
//! of the current context. The shell cannot pass `--config` or `--context` on to the
//! completer, so it uses `$EBBCTL_CONFIG` or the default config and its current context.

use clap_complete::engine::CompletionCandidate;
use ebb::api::proto::{ListJobsRequest, ListQueuesRequest};
use ebb::cli::client::{Clients, connect};
use ebb::cli::config::{CtlConfig, default_path};
use std::ffi::OsStr;
use std::io::Write;
use std::time::Duration;

/// A completion must never hang the shell: a server away gives no names, quickly.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);

/// The jobs whose names start with what was typed; the namespace is the help text, so a
/// name in two namespaces shows both.
pub fn job_names(typed: &OsStr) -> Vec<CompletionCandidate> {
    let Some(typed) = typed.to_str() else {
        return Vec::new();
    };
    let jobs = ask(|mut c| async move {
        let request = ListJobsRequest {
            namespace: String::new(),
            label_selector: String::new(),
        };
        let jobs = c.jobs.list(request).await.ok()?.into_inner().jobs;
        Some(
            jobs.into_iter()
                .filter_map(|j| j.spec.map(|s| (s.name, s.namespace)))
                .collect::<Vec<_>>(),
        )
    });
    let mut names: Vec<_> = jobs
        .unwrap_or_default()
        .into_iter()
        .filter(|(name, _)| name.starts_with(typed))
        .collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|(name, namespace)| {
            CompletionCandidate::new(name).help(Some(format!("namespace {namespace}").into()))
        })
        .collect()
}

/// The queues whose names start with what was typed.
pub fn queue_names(typed: &OsStr) -> Vec<CompletionCandidate> {
    let Some(typed) = typed.to_str() else {
        return Vec::new();
    };
    let queues = ask(|mut c| async move {
        let queues = c.queues.list(ListQueuesRequest {}).await.ok()?;
        Some(
            queues
                .into_inner()
                .queues
                .into_iter()
                .map(|q| q.name)
                .collect::<Vec<_>>(),
        )
    });
    queues
        .unwrap_or_default()
        .into_iter()
        .filter(|name| name.starts_with(typed))
        .map(CompletionCandidate::new)
        .collect()
}

/// Runs one question against the current context's server, or gives None (no config, no
/// server, too slow): completing offers nothing rather than an error in the prompt.
fn ask<T, F, Fut>(question: F) -> Option<T>
where
    F: FnOnce(Clients) -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let path = default_path();
    let config = CtlConfig::load(&path).ok()?;
    let context = config.context(None, &path).ok()?.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    runtime.block_on(async {
        let clients = connect(&context).ok()?;
        tokio::time::timeout(ASK_TIMEOUT, question(clients))
            .await
            .ok()
            .flatten()
    })
}

/// The script that makes `shell` ask ebbctl for completions (what `COMPLETE=<shell>
/// ebbctl` prints), for `ebbctl completions <shell>`.
pub fn write_registration(shell: clap_complete::Shell, out: &mut dyn Write) -> std::io::Result<()> {
    let name = shell.to_string();
    let shells = clap_complete::env::Shells::builtins();
    let completer = shells
        .completer(&name)
        .ok_or_else(|| std::io::Error::other(format!("no dynamic completion for {name}")))?;
    match completer.write_registration("COMPLETE", "ebbctl", "ebbctl", "ebbctl", out) {
        // `ebbctl completions bash | head` is not a failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}
