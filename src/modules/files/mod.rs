//! File modules: file, copy, template, stat, lineinfile, tempfile.

pub mod copy;
pub mod file;
pub mod lineinfile;
pub mod stat;
pub mod tempfile;
pub mod template;
pub mod write;
