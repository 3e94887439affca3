//! `package_facts`: the installed packages as `ansible_facts.packages`
//! (`{name: [{name, version, arch, source}]}`), from dpkg, rpm or apk.

use async_trait::async_trait;
use indexmap::IndexMap;
use minijinja::Value;

use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};
use crate::template::map_value;

pub struct PackageFacts;

/// Lists `source\tname\tversion\tarch` lines with whichever database the target has. The
/// system directories are searched after the task's PATH, as Ansible finds its managers
/// whatever PATH the task sets (in a subshell: the PATH is the command's own).
const LIST: &str = r#"(PATH="$PATH:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
if command -v dpkg-query >/dev/null 2>&1; then dpkg-query -W -f='apt\t${Package}\t${Version}\t${Architecture}\t${db:Status-Abbrev}\n' | awk -F'\t' '$5 ~ /^ii/ {print $1"\t"$2"\t"$3"\t"$4}'
elif command -v rpm >/dev/null 2>&1; then rpm -qa --qf 'rpm\t%{NAME}\t%{VERSION}-%{RELEASE}\t%{ARCH}\n'
elif command -v apk >/dev/null 2>&1; then apk list -I 2>/dev/null | awk '{n=$1; a=$2; sub(/-[0-9].*$/, "", n); v=substr($1, length(n)+2); print "apk\t"n"\t"v"\t"a}'
else echo 'no package database found (dpkg, rpm or apk)' >&2; exit 1; fi)"#;

pub fn parse_packages(text: &str) -> IndexMap<String, Vec<Value>> {
    let mut packages: IndexMap<String, Vec<Value>> = IndexMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let [source, name, version, arch] = f[..] else {
            continue;
        };
        let mut entry = IndexMap::new();
        entry.insert("name".to_string(), Value::from(name));
        entry.insert("version".to_string(), Value::from(version));
        entry.insert("arch".to_string(), Value::from(arch));
        entry.insert("source".to_string(), Value::from(source));
        packages
            .entry(name.to_string())
            .or_default()
            .push(map_value(entry));
    }
    packages
}

#[async_trait]
impl Module for PackageFacts {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let _ = args.raw_any(&["manager", "strategy"]);
        args.finish()?;
        let out = ctx.run_ok(LIST, None, "listing packages").await?;
        let packages = parse_packages(&out.stdout_text())
            .into_iter()
            .map(|(k, v)| (k, Value::from(v)))
            .collect();
        Ok(ModuleResult::changed(false).with_fact("packages", map_value(packages)))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_dpkg_lines() {
        let p = super::parse_packages("apt\tnginx\t1.22.1-9\tamd64\napt\tlibc6\t2.36\tamd64\n");
        assert_eq!(p.len(), 2);
        assert_eq!(
            p["nginx"][0].get_attr("version").unwrap().as_str(),
            Some("1.22.1-9")
        );
    }
}
