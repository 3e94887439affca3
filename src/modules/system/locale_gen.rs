//! `locale_gen` (community.general): locales generated or removed as the module does it:
//! present when `locale -a` lists every name, `/etc/locale.gen` lines uncommented or
//! commented (written through the shared file writer) and `locale-gen` run; Ubuntu's legacy
//! `/var/lib/locales/supported.d` is handled with its own `locale-gen`.

use async_trait::async_trait;
use regex::Regex;

use crate::connection::quote;
use crate::modules::files::write::{converge, WriteRequest};
use crate::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct LocaleGen;

const ETC_LOCALE_GEN: &str = "/etc/locale.gen";
const VAR_LIB_LOCALES: &str = "/var/lib/locales/supported.d";
const SUPPORTED: &str = "/usr/share/i18n/SUPPORTED";

/// `locale -a` writes some encodings in lower case; both sides are compared in this form.
const NORMALISATION: &[(&str, &str)] = &[
    (".utf8", ".UTF-8"),
    (".eucjp", ".EUC-JP"),
    (".iso885915", ".ISO-8859-15"),
    (".cp1251", ".CP1251"),
    (".koi8r", ".KOI8-R"),
    (".armscii8", ".ARMSCII-8"),
    (".euckr", ".EUC-KR"),
    (".gbk", ".GBK"),
    (".gb18030", ".GB18030"),
    (".euctw", ".EUC-TW"),
];

fn fix_case(name: &str) -> String {
    NORMALISATION
        .iter()
        .fold(name.to_string(), |n, (from, to)| n.replace(from, to))
}

/// How the target keeps its list of locales.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mechanism {
    Glibc,
    UbuntuLegacy,
}

/// What the probe saw.
#[derive(Debug, Default, PartialEq)]
pub struct Observed {
    pub mechanism: Option<Mechanism>,
    /// `locale -a`.
    pub generated: Vec<String>,
    /// Locale names listed in `/usr/share/i18n/SUPPORTED`.
    pub supported: Vec<String>,
}

fn probe_command() -> String {
    format!(
        "if [ -e {ETC_LOCALE_GEN} ]; then echo mechanism:glibc; elif [ -e {VAR_LIB_LOCALES} ]; then echo mechanism:ubuntu_legacy; fi; \
         locale -a 2>/dev/null | sed 's/^/have:/'; sed 's/^/sup:/' {SUPPORTED} 2>/dev/null; true"
    )
}

/// Reads the probe's output (pure: unit-tested on recorded output).
pub fn parse(text: &str) -> Observed {
    let line_re =
        Regex::new(r"^\s*#?\s*(?P<locale>\S+[\._\S]+) (?P<charset>\S+)\s*$").expect("static");
    let mut seen = Observed::default();
    for line in text.lines() {
        if let Some(m) = line.strip_prefix("mechanism:") {
            seen.mechanism = match m {
                "glibc" => Some(Mechanism::Glibc),
                _ => Some(Mechanism::UbuntuLegacy),
            };
        } else if let Some(name) = line.strip_prefix("have:") {
            seen.generated.push(name.to_string());
        } else if let Some(entry) = line.strip_prefix("sup:") {
            if let Some(c) = line_re.captures(entry) {
                seen.supported.push(c["locale"].to_string());
            }
        }
    }
    seen
}

impl Observed {
    /// The names `locale -a` does not list.
    pub fn not_generated<'a>(&self, names: &'a [String]) -> Vec<&'a String> {
        names
            .iter()
            .filter(|n| !self.generated.iter().any(|g| fix_case(g) == fix_case(n)))
            .collect()
    }

    /// The names neither SUPPORTED nor `locale -a` lists.
    pub fn unavailable<'a>(&self, names: &'a [String]) -> Vec<&'a String> {
        self.not_generated(names)
            .into_iter()
            .filter(|n| !self.supported.contains(n))
            .collect()
    }
}

/// `/etc/locale.gen` with each name's line uncommented (`enabled`) or commented (pure).
pub fn set_locales(content: &str, names: &[String], enabled: bool) -> String {
    let patterns: Vec<(Regex, &String)> = names
        .iter()
        .filter_map(|n| {
            Regex::new(&format!(r"^#?\s*{} (?P<charset>.+)", regex::escape(n)))
                .ok()
                .map(|re| (re, n))
        })
        .collect();
    content
        .split_inclusive('\n')
        .map(|line| {
            let (body, end) = match line.strip_suffix('\n') {
                Some(body) => (body, "\n"),
                None => (line, ""),
            };
            let mut body = body.to_string();
            for (re, name) in &patterns {
                let replacement = if enabled {
                    format!("{name} ${{charset}}")
                } else {
                    format!("# {name} ${{charset}}")
                };
                body = re.replacen(&body, 1, replacement.as_str()).into_owned();
            }
            body + end
        })
        .collect()
}

#[async_trait]
impl Module for LocaleGen {
    async fn run(&self, ctx: &ModuleCtx<'_>, mut args: Args) -> Result<ModuleResult, ModuleError> {
        let names = args.list(&["name"])?;
        let present = args.choice("state", &["absent", "present"], "present")? == "present";
        args.finish()?;
        if names.is_empty() {
            return Err(ModuleError::Args(
                "locale_gen: missing required arguments: name".into(),
            ));
        }
        let out = ctx
            .run_ok(&probe_command(), None, "reading the locales")
            .await?;
        let seen = parse(&out.stdout_text());
        let Some(mechanism) = seen.mechanism else {
            return Err(ModuleError::Failed(format!(
                "{VAR_LIB_LOCALES} and {ETC_LOCALE_GEN} are missing. Is the package \"locales\" installed?"
            )));
        };
        let missing = seen.unavailable(&names);
        if !missing.is_empty() {
            let list: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
            return Err(ModuleError::Failed(format!(
                "The following locales you have entered are not available on your system: {}",
                list.join(", ")
            )));
        }
        // As the module tracks it: present means every name is generated.
        let is_present = seen.not_generated(&names).is_empty();
        let mut result = ModuleResult::changed(is_present != present);
        if result.changed && !ctx.check_mode {
            let words: Vec<String> = names.iter().map(|n| quote(n)).collect();
            match mechanism {
                Mechanism::Glibc => {
                    let content = ctx
                        .run_ok(&format!("cat {ETC_LOCALE_GEN}"), None, "reading locale.gen")
                        .await?
                        .stdout_text();
                    let edited = set_locales(&content, &names, present);
                    let written =
                        converge(ctx, WriteRequest::config_file(ETC_LOCALE_GEN, edited)).await?;
                    result.diffs.extend(written.diffs);
                    ctx.run_ok("locale-gen", None, "locale-gen").await?;
                }
                Mechanism::UbuntuLegacy if present => {
                    ctx.run_ok(
                        &format!("locale-gen {}", words.join(" ")),
                        None,
                        "locale-gen",
                    )
                    .await?;
                }
                Mechanism::UbuntuLegacy => {
                    let local = format!("{VAR_LIB_LOCALES}/local");
                    let script = format!(
                        "awk -v drop={names} 'BEGIN {{ n = split(drop, d, \" \"); for (i = 1; i <= n; i++) gone[d[i]] = 1 }} !($1 in gone)' {local} > {local}.kiln && mv {local}.kiln {local} && locale-gen --purge",
                        names = quote(&names.join(" ")),
                    );
                    ctx.run_ok(&script, None, "locale-gen --purge").await?;
                }
            }
        }
        Ok(result
            .with("name", names)
            .with("ubuntu_mode", mechanism == Mechanism::UbuntuLegacy)
            .with(
                "mechanism",
                match mechanism {
                    Mechanism::Glibc => "glibc",
                    Mechanism::UbuntuLegacy => "ubuntu_legacy",
                },
            ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_reads_generated_and_supported_locales() {
        let seen = parse(
            "mechanism:glibc\nhave:C\nhave:C.utf8\nhave:de_CH.utf8\nhave:POSIX\nsup:de_CH.UTF-8 UTF-8\nsup:de_CH ISO-8859-1\nsup:en_US.UTF-8 UTF-8\n",
        );
        assert_eq!(seen.mechanism, Some(Mechanism::Glibc));
        assert_eq!(seen.supported, ["de_CH.UTF-8", "de_CH", "en_US.UTF-8"]);
        let names: Vec<String> = vec!["de_CH.UTF-8".into(), "en_US.UTF-8".into()];
        assert_eq!(seen.not_generated(&names), [&names[1]]);
        let odd = vec!["C.UTF-8".to_string(), "xx_YY.UTF-8".to_string()];
        assert_eq!(seen.unavailable(&odd), [&odd[1]]);
        assert_eq!(parse("").mechanism, None);
    }

    #[test]
    fn locale_gen_lines_are_commented_and_uncommented() {
        let content = "# This file lists locales\n# de_CH.UTF-8 UTF-8\n# en_US.UTF-8 UTF-8\nen_US ISO-8859-1\n#  fr_FR.UTF-8 UTF-8";
        let names = vec!["de_CH.UTF-8".to_string(), "fr_FR.UTF-8".to_string()];
        assert_eq!(
            set_locales(content, &names, true),
            "# This file lists locales\nde_CH.UTF-8 UTF-8\n# en_US.UTF-8 UTF-8\nen_US ISO-8859-1\nfr_FR.UTF-8 UTF-8"
        );
        let on = "de_CH.UTF-8 UTF-8\nen_US ISO-8859-1\n";
        assert_eq!(
            set_locales(on, &["en_US".to_string()], false),
            "de_CH.UTF-8 UTF-8\n# en_US ISO-8859-1\n"
        );
    }
}
