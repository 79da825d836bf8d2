//! What one probe run concludes (upstream's `probe.Result` with its output).

/// A probe run's result and the text upstream attaches to it (shown in events).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Healthy; the output (an HTTP body, exec output) is only logged.
    Success(String),
    /// Healthy but noteworthy (an HTTP redirect not followed): recorded as a `ProbeWarning` event.
    Warning(String),
    /// Unhealthy, with the message of the `Unhealthy` event.
    Failure(String),
}

/// A probe that could not run at all (upstream's `Unknown` with an error): the result is thrown away.
pub(crate) type Errored = String;
