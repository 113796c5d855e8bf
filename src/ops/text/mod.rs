//! Line-level edits of text files inside images. Each keeps every byte it does not touch.

pub mod cmdline;
pub mod config_txt;
pub mod locale_gen;
pub mod table;
