//! [`ExitStatus`]: the process exit codes, the same ones `mlmeta --help`
//! lists.

/// How `mlmeta` exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: the command did what it was asked.
    Success,
    /// 1: any error: the server is unreachable, the arguments or the input
    /// file are invalid, the server refused the request.
    Failure,
    /// 2: what the command names does not exist (no such model, no model
    /// has the metric, a model's datablob or template is missing).
    NotFound,
    /// 2: `watch --until-status`: a watched run ended FAILED, CRASHED or
    /// KILLED (the same code, so that `mlmeta watch RUN --until-status
    /// finished` fails a scheduler's step like a missing run would).
    RunNotFinished,
}

impl ExitStatus {
    /// The numeric exit code.
    pub fn code(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::Failure => 1,
            Self::NotFound | Self::RunNotFinished => 2,
        }
    }
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(status: ExitStatus) -> Self {
        Self::from(status.code())
    }
}
