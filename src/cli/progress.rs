//! indicatif progress bars behind the library's [`Progress`] trait: one bar for the current
//! phase and, below it, one bar per part running beside the others (each node image being
//! written).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use piimage::progress::Progress;

/// Progress bars on stderr, or nothing when quiet or not a terminal.
#[derive(Debug)]
pub struct Bars {
    enabled: bool,
    multi: MultiProgress,
    bar: Mutex<Option<ProgressBar>>,
    tasks: Mutex<HashMap<String, ProgressBar>>,
}

impl Bars {
    /// Bars are shown only when `quiet` is false and stderr is a terminal.
    pub fn new(quiet: bool) -> Self {
        Self {
            enabled: !quiet && std::io::stderr().is_terminal(),
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bar: Mutex::new(None),
            tasks: Mutex::new(HashMap::new()),
        }
    }
}

fn byte_bar(total: u64, label_width: usize) -> ProgressBar {
    let template = format!(
        "{{msg:{label_width}}} [{{bar:30}}] {{bytes}}/{{total_bytes}} {{binary_bytes_per_sec}} eta {{eta}}"
    );
    ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden()).with_style(
        ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    )
}

impl Progress for Bars {
    fn start(&self, what: &str, total: Option<u64>) {
        if !self.enabled {
            return;
        }
        let bar = match total {
            Some(t) => byte_bar(t, 30),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{spinner} {msg:30} {bytes} {binary_bytes_per_sec}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            ),
        };
        let bar = self.multi.add(bar);
        bar.set_message(what.to_owned());
        bar.enable_steady_tick(Duration::from_millis(200));
        if let Ok(mut slot) = self.bar.lock()
            && let Some(old) = slot.replace(bar)
        {
            old.finish_and_clear();
            self.multi.remove(&old);
        }
    }

    fn advance(&self, n: u64) {
        if let Ok(slot) = self.bar.lock()
            && let Some(bar) = slot.as_ref()
        {
            bar.inc(n);
        }
    }

    fn finish(&self) {
        if let Ok(mut slot) = self.bar.lock()
            && let Some(bar) = slot.take()
        {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
    }

    fn task_start(&self, name: &str, total: Option<u64>) {
        if !self.enabled {
            return;
        }
        let bar = self.multi.add(byte_bar(total.unwrap_or(0), 28));
        bar.set_message(format!("  {name}"));
        if let Ok(mut tasks) = self.tasks.lock()
            && let Some(old) = tasks.insert(name.to_owned(), bar)
        {
            old.finish_and_clear();
            self.multi.remove(&old);
        }
    }

    fn task_advance(&self, name: &str, n: u64) {
        if let Ok(tasks) = self.tasks.lock()
            && let Some(bar) = tasks.get(name)
        {
            bar.inc(n);
        }
    }

    fn task_finish(&self, name: &str) {
        if let Ok(mut tasks) = self.tasks.lock()
            && let Some(bar) = tasks.remove(name)
        {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
    }
}
