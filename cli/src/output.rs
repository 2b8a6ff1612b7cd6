//! How the audits and the DLQ commands print: lines for people, or one JSON
//! document for scripts (its shape is in the README and stays stable).

/// `--output`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Lines for a person at a terminal.
    #[default]
    Text,
    /// One JSON document on standard output, nothing else there.
    Json,
}

impl Output {
    pub fn is_json(self) -> bool {
        self == Output::Json
    }
}

/// Prints `document` as the one JSON document of the command's output.
pub fn print_json(document: &serde_json::Value) {
    // A `Value` always serialises; `Display` on it cannot fail.
    println!("{document:#}");
}
