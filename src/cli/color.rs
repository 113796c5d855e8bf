//! Colour on terminals: `--color auto|always|never`, and `NO_COLOR` (any value, even empty,
//! see <https://no-color.org>) turns `auto` off. `auto` colours a stream only when it is a
//! terminal, so piped output and files never hold escape codes. `always` wins over
//! `NO_COLOR`: it is an explicit request on the command line.

use std::fmt;
use std::io::IsTerminal;

/// When to colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless `NO_COLOR` is set.
    #[default]
    Auto,
    /// Always (even when piped, even with `NO_COLOR`).
    Always,
    /// Never.
    Never,
}

impl fmt::Display for ColorChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Always => "always",
            Self::Never => "never",
        })
    }
}

/// Which stream the text goes to (each is checked for being a terminal on its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// SGR codes piimage uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Removed lines.
    Red,
    /// Added lines.
    Green,
    /// Hunk separators and headings.
    Cyan,
    /// `error:`.
    BoldRed,
    /// `warning:`.
    BoldYellow,
}

impl Style {
    const fn code(self) -> &'static str {
        match self {
            Self::Red => "31",
            Self::Green => "32",
            Self::Cyan => "36",
            Self::BoldRed => "1;31",
            Self::BoldYellow => "1;33",
        }
    }
}

/// Paints text for one stream, or passes it through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paint {
    on: bool,
}

impl Paint {
    /// The decision for `stream` under `choice`, reading `NO_COLOR` and the terminal state.
    pub fn new(choice: ColorChoice, stream: Stream) -> Self {
        let terminal = match stream {
            Stream::Stdout => std::io::stdout().is_terminal(),
            Stream::Stderr => std::io::stderr().is_terminal(),
        };
        Self {
            on: decide(choice, std::env::var_os("NO_COLOR").is_some(), terminal),
        }
    }

    /// `text` in `style` (the text unchanged when colour is off). Multi-line text is painted
    /// line by line, so a pager that cuts lines keeps the rest right.
    pub fn paint(self, style: Style, text: &str) -> String {
        if !self.on || text.is_empty() {
            return text.to_owned();
        }
        let mut out = String::with_capacity(text.len() + 16);
        for line in text.split_inclusive('\n') {
            let (body, end) = match line.strip_suffix('\n') {
                Some(b) => (b, "\n"),
                None => (line, ""),
            };
            out.push_str(&format!("\x1b[{}m{body}\x1b[0m{end}", style.code()));
        }
        out
    }
}

/// Colour or not, from the choice, whether `NO_COLOR` is set and whether the stream is a
/// terminal.
const fn decide(choice: ColorChoice, no_color: bool, terminal: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => terminal && !no_color,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions() {
        let cases = [
            ("auto on a terminal", ColorChoice::Auto, false, true, true),
            ("auto piped", ColorChoice::Auto, false, false, false),
            ("auto with NO_COLOR", ColorChoice::Auto, true, true, false),
            ("always piped", ColorChoice::Always, false, false, true),
            (
                "always beats NO_COLOR",
                ColorChoice::Always,
                true,
                false,
                true,
            ),
            (
                "never on a terminal",
                ColorChoice::Never,
                false,
                true,
                false,
            ),
        ];
        for (name, choice, no_color, terminal, want) in cases {
            assert_eq!(decide(choice, no_color, terminal), want, "{name}");
        }
    }

    #[test]
    fn paints_line_by_line() {
        let p = Paint { on: true };
        assert_eq!(
            p.paint(Style::Red, "a\nb\n"),
            "\x1b[31ma\x1b[0m\n\x1b[31mb\x1b[0m\n"
        );
        assert_eq!(Paint { on: false }.paint(Style::Red, "a\n"), "a\n");
    }
}
