//! File modules: file, copy, template, stat, lineinfile, tempfile.

pub mod archive;
pub mod assemble;
pub mod blockinfile;
pub mod copy;
pub mod copy_dir;
pub mod edit;
pub mod fetch;
pub mod file;
pub mod find;
pub mod get_url;
pub mod lineinfile;
pub mod path_info;
pub mod replace;
pub mod slurp;
pub mod stat;
pub mod synchronize;
pub mod tempfile;
pub mod template;
pub mod unarchive;
pub mod write;
pub mod write_plan;
pub mod write_script;
