//! Recipe-level fields: `cluster`, `base` (and `--base`), `output`.

use std::path::{Path, PathBuf};

use crate::disk::source::BaseSpec;
use crate::io::hashing::Sha256Digest;

use super::ctx::{Ctx, resolve_path};
use super::load::io_reason;
use super::located::{Located, Origin};
use super::raw::{RawBase, RawCluster, RawOutput};
use super::spec::{ClusterSpec, Medium, OutputFormat, OutputSpec};
use super::{sections, syntax};

/// The default output formats.
pub const DEFAULT_FORMATS: &[OutputFormat] = &[OutputFormat::ImgXz];
/// The default output name template.
pub const DEFAULT_OUTPUT_NAME: &str = "{cluster}-{node}";

pub(crate) fn cluster(
    ctx: &mut Ctx,
    raw: Option<&Located<RawCluster>>,
    top: &Origin,
) -> ClusterSpec {
    let r = raw.map(|c| &c.value);
    let name = match r.and_then(|c| c.name.as_ref()) {
        Some(n) => {
            if let Err(e) = syntax::hostname_label(&n.value) {
                ctx.problem(&n.at, format!("cluster name: {e}"));
            }
            n.value.clone()
        }
        None => {
            let at = raw.map_or_else(|| top.child("cluster"), |c| c.at.clone());
            ctx.problem(
                &at,
                "the cluster needs a name: `cluster: { name: mycluster }`",
            );
            String::new()
        }
    };
    let domain = r.and_then(|c| c.domain.as_ref()).map(|d| {
        ctx.check(&d.at, syntax::domain(&d.value));
        d.value.clone()
    });
    ClusterSpec {
        name,
        domain,
        description: r
            .and_then(|c| c.description.as_ref())
            .map(|d| d.value.clone()),
    }
}

pub(crate) fn base(
    ctx: &mut Ctx,
    raw: Option<&Located<RawBase>>,
    over: Option<&Path>,
    top: &Origin,
) -> (BaseSpec, bool) {
    let placeholder = BaseSpec::Path {
        path: PathBuf::new(),
        sha256: None,
    };
    if let Some(path) = over {
        match std::fs::metadata(path) {
            Ok(m) if m.is_file() => {}
            Ok(_) => ctx
                .problems
                .push(super::Problem::file(path, "--base: not a regular file")),
            Err(e) => ctx.problems.push(super::Problem::file(
                path,
                format!("--base: {}", io_reason(&e)),
            )),
        }
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
        return (BaseSpec::Path { path, sha256: None }, true);
    }
    let Some(b) = raw else {
        ctx.problem(
            &top.child("base"),
            "no base image: add `base: { url: ..., sha256: ... }` or `base: { path: ... }`, or \
             pass --base PATH",
        );
        return (placeholder, false);
    };
    let sha256 = b.value.sha256.as_ref().and_then(|s| {
        let parsed = s.value.parse::<Sha256Digest>().map_err(|e| e.to_string());
        ctx.check(&s.at, parsed)
    });
    let bad_sha = b.value.sha256.is_some() && sha256.is_none();
    match (&b.value.url, &b.value.path) {
        (Some(url), None) => {
            if !url.value.contains("://") {
                ctx.problem(
                    &url.at,
                    "not a URL (http:// or https://); a local file goes in `path`",
                );
                return (placeholder, false);
            }
            if sha256.is_none() && bad_sha {
                return (placeholder, false);
            }
            match BaseSpec::parse(&url.value, sha256) {
                Ok(spec) => (spec, false),
                Err(crate::disk::source::SourceError::MissingSha256 { .. }) => {
                    ctx.problem(
                        &b.at,
                        "a URL base needs `sha256` (the download is verified and cached by it): \
                         copy it from the `.sha256` file next to the image",
                    );
                    (placeholder, false)
                }
                Err(e) => {
                    ctx.problem(&url.at, e.to_string());
                    (placeholder, false)
                }
            }
        }
        (None, Some(p)) => {
            let path = resolve_path(&p.at, &p.value);
            match std::fs::metadata(&path) {
                Ok(m) if m.is_file() => {}
                Ok(_) => ctx.problem(&p.at, format!("{}: not a regular file", path.display())),
                Err(e) => ctx.problem(
                    &p.at,
                    format!(
                        "base image {}: {} (download it first, or pass --base PATH)",
                        path.display(),
                        io_reason(&e)
                    ),
                ),
            }
            let path = std::path::absolute(&path).unwrap_or(path);
            (BaseSpec::Path { path, sha256 }, false)
        }
        (Some(_), Some(_)) => {
            ctx.problem(&b.at, "give `url` or `path`, not both");
            (placeholder, false)
        }
        (None, None) => {
            ctx.problem(&b.at, "`base` needs `url` (with `sha256`) or `path`");
            (placeholder, false)
        }
    }
}

/// The output spec, and whether its name template came from the recipe (for messages).
/// The largest `output.size`: 2 TiB, what an MBR partition table (every official image's)
/// can address with 512-byte sectors.
pub const MAX_IMAGE_SIZE: u64 = 2 << 40;

/// An image size is whole 512-byte sectors and at most [`MAX_IMAGE_SIZE`].
fn image_size(bytes: u64) -> Result<u64, String> {
    if !bytes.is_multiple_of(512) {
        return Err(format!(
            "{bytes} bytes is not a whole number of 512-byte sectors (write e.g. 28G or 512M)"
        ));
    }
    if bytes > MAX_IMAGE_SIZE {
        return Err(format!(
            "{bytes} bytes is more than an MBR partition table can address (2 TiB)"
        ));
    }
    Ok(bytes)
}

pub(crate) fn output(
    ctx: &mut Ctx,
    raw: Option<&Located<RawOutput>>,
) -> (OutputSpec, Option<Origin>) {
    let r = raw.map(|o| &o.value);
    let dir = match r.and_then(|o| o.dir.as_ref()) {
        Some(d) => {
            let p = resolve_path(&d.at, &d.value);
            std::path::absolute(&p).unwrap_or(p)
        }
        None => PathBuf::from("out"),
    };
    let name = match r.and_then(|o| o.name.as_ref()) {
        Some(n) => {
            if n.value.is_empty() {
                ctx.problem(
                    &n.at,
                    "an output name must not be empty (the default is `{cluster}-{node}`)",
                );
            } else if n.value.contains(['/', '\0']) {
                ctx.problem(&n.at, "an output name is a file name: no `/`");
            } else {
                ctx.check(
                    &n.at,
                    sections::check_placeholders(&n.value, &["cluster", "node", "role"]),
                );
            }
            n.value.clone()
        }
        None => DEFAULT_OUTPUT_NAME.to_owned(),
    };
    let mut formats = Vec::new();
    if let Some(f) = r.and_then(|o| o.formats.as_ref()) {
        for item in &f.value {
            if formats.contains(&item.value) {
                ctx.problem(&item.at, format!("{} is listed twice", item.value));
            } else {
                formats.push(item.value);
            }
        }
        if !formats.iter().any(|f| f.is_image()) {
            ctx.problem(
                &f.at,
                "no image format: list at least one of img, img.zst, img.xz, img.gz (bmap \
                 describes an image and netboot is made from one; neither replaces it)",
            );
        }
    } else {
        formats = DEFAULT_FORMATS.to_vec();
    }
    let size = r
        .and_then(|o| o.size.as_ref())
        .and_then(|s| ctx.check(&s.at, syntax::size(&s.value).and_then(image_size)));
    let device_size = r
        .and_then(|o| o.device_size.as_ref())
        .and_then(|s| ctx.check(&s.at, syntax::size(&s.value)));
    if let (Some(grown), Some(device), Some(s)) =
        (size, device_size, r.and_then(|o| o.size.as_ref()))
        && grown > device
    {
        ctx.problem(
            &s.at,
            format!(
                "output.size ({grown} bytes) is larger than output.device_size ({device} \
                 bytes): the image would not fit the device"
            ),
        );
    }
    let name_at = r.and_then(|o| o.name.as_ref()).map(|n| n.at.clone());
    (
        OutputSpec {
            dir,
            name,
            formats,
            medium: r
                .and_then(|o| o.medium.as_ref())
                .map_or(Medium::Sd, |m| m.value),
            size,
            device_size,
            imager_manifest: r
                .and_then(|o| o.imager_manifest.as_ref())
                .is_some_and(|b| b.value),
            base_url: r
                .and_then(|o| o.base_url.as_ref())
                .and_then(|u| ctx.check(&u.at, u.value.parse())),
        },
        name_at,
    )
}
