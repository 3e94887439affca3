//! File modules: file, copy, template, stat, lineinfile, tempfile.

pub mod copy;
pub mod file;
pub mod lineinfile;
pub mod stat;
pub mod template;
pub mod tempfile;
pub mod write;
