//! `piimage build`: from a resolved recipe to one image per node, plus the cluster files.
//!
//! 1. the base is resolved (downloaded, verified, decompressed once into the cache) and opened
//!    read-only; its layout and OS [`Profile`] are read once;
//! 2. every selected node is planned (no I/O on the image; errors stop the build before any
//!    output is written);
//! 3. nodes are applied to copy-on-write disks and streamed to their outputs, in batches so
//!    memory stays bounded; each node's outputs appear under their final names only when
//!    complete;
//! 4. `SHA256SUMS`, `hosts`, `known_hosts`, `ssh_config`, `inventory.yaml` and (if asked) the
//!    Raspberry Pi Imager manifest are written next to the images.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};

use crate::disk::partition::DiskId;
use crate::disk::source::{self, Cache};
use crate::disk::{CowDisk, FileStorage, Storage, Window};
use crate::fs::ext4::Ext4Reader;
use crate::fs::fat::FatReader;
use crate::inspect::human_bytes;
use crate::io::sniff::Compression;
use crate::output::{
    BaseCache, CacheConfig, NodeImage, NodeOutputs, OutputSpec, build_nodes, write_sha256sums,
};
use crate::plan::cluster::{ClusterNode, hosts, inventory, known_hosts, ssh_config};
use crate::plan::node::{NodePlan, plan_node};
use crate::plan::profile::Profile;
use crate::progress::Progress;
use crate::recipe::{OutputFormat, ResolvedRecipe};
use crate::secrets::hostkey::ed25519;
use crate::secrets::rng::derived_rng;

use crate::pipeline::grow::{Growth, grow_root};
use crate::pipeline::identity::set_disk_id;
use crate::pipeline::{Layout, apply_node};

/// Options of a build that are not in the recipe.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Parallel node builds (0: one per core).
    pub jobs: usize,
    /// Output directory instead of the recipe's.
    pub out_dir: Option<PathBuf>,
    /// Build only these nodes (names); empty: every selected node.
    pub only: Vec<String>,
}

/// What a build wrote.
#[derive(Debug, Clone)]
pub struct BuildReport {
    /// Output directory.
    pub dir: PathBuf,
    /// Per node, its outputs.
    pub nodes: Vec<NodeOutputs>,
    /// Cluster files written.
    pub cluster_files: Vec<PathBuf>,
    /// Damage in the base worked around (a bad GPT copy when the other one was valid).
    pub warnings: Vec<String>,
}

/// The base image, opened and understood once per build.
pub struct PreparedBase {
    /// The raw base file.
    pub path: PathBuf,
    /// The base's bytes: the file read-only, or the grown image over it ([`Self::grow`]).
    pub storage: Arc<dyn Storage>,
    /// Set once [`Self::grow`] made the image larger than the file.
    pub growth: Option<Growth>,
    /// Partitions and filesystems.
    pub layout: Layout,
    /// The OS profile.
    pub profile: Profile,
    /// The MBR disk id, if any.
    pub disk_id: Option<u32>,
    /// `cmdline.txt` names the root by PARTUUID.
    pub uses_partuuid: bool,
}

impl std::fmt::Debug for PreparedBase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedBase")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Opens and reads the raw base image at `path`.
pub fn prepare_base(path: &Path) -> Result<PreparedBase> {
    let storage: Arc<dyn Storage> = Arc::new(
        FileStorage::open_read_only(path).with_context(|| format!("opening {}", path.display()))?,
    );
    let layout = Layout::detect(&storage).with_context(|| path.display().to_string())?;
    let Some(root) = layout.root.clone() else {
        bail!("{}: no ext4 root partition", path.display());
    };
    let mut cmdline = Vec::new();
    let mut boot_files = Vec::new();
    if let Some(boot) = &layout.boot {
        let fat = FatReader::open(Window::new(
            Arc::clone(&storage),
            boot.offset(),
            boot.len(),
        )?)
        .with_context(|| format!("{}: partition {} (FAT)", path.display(), boot.number))?;
        if let Some(c) = fat.read("cmdline.txt")? {
            cmdline = String::from_utf8_lossy(&c)
                .split_whitespace()
                .map(str::to_owned)
                .collect();
        }
        boot_files = fat.root_names()?;
    }
    let reader = Ext4Reader::open(Window::new(
        Arc::clone(&storage),
        root.offset(),
        root.len(),
    )?)
    .with_context(|| format!("{}: partition {} (ext4)", path.display(), root.number))?;
    let profile = Profile::read(&reader, &cmdline, &boot_files)?;
    let disk_id = match layout.table.disk_id {
        DiskId::Mbr(id) => Some(id),
        DiskId::Gpt(_) => None,
    };
    let uses_partuuid = cmdline.iter().any(|t| t.starts_with("root=PARTUUID="));
    Ok(PreparedBase {
        path: path.to_owned(),
        storage,
        growth: None,
        layout,
        profile,
        disk_id,
        uses_partuuid,
    })
}

impl PreparedBase {
    /// Grows the image to `size` bytes (`output.size`), once for every node: the root
    /// partition reaches the new end and its ext4 filesystem fills it (see
    /// [`crate::pipeline::grow`]). The file is not touched; the grown image is an overlay.
    ///
    /// # Errors
    /// `size` is smaller than the base, or the image cannot be grown.
    pub fn grow(self, size: u64) -> Result<Self> {
        let old_len = self.storage.len();
        if size < old_len {
            bail!(
                "output.size: {size} bytes ({}) is smaller than the base image {} ({old_len} \
                 bytes, {})",
                human_bytes(size),
                self.path.display(),
                human_bytes(old_len)
            );
        }
        if !size.is_multiple_of(crate::disk::SECTOR_SIZE) {
            bail!("output.size: {size} bytes is not a whole number of 512-byte sectors");
        }
        if size == old_len {
            return Ok(self);
        }
        let disk = CowDisk::grown(Arc::clone(&self.storage), size)?;
        let growth = grow_root(&disk, &self.layout, old_len)
            .with_context(|| format!("{} grown to {}", self.path.display(), human_bytes(size)))?;
        let layout = Layout::detect(&disk)
            .with_context(|| format!("{} after growing it", self.path.display()))?;
        Ok(Self {
            storage: Arc::new(disk),
            growth: Some(growth),
            layout,
            ..self
        })
    }
}

/// The seed bytes: the recipe's, or fresh randomness (builds then differ).
pub fn seed_bytes(recipe: &ResolvedRecipe) -> Result<Vec<u8>> {
    match &recipe.seed {
        Some(s) => Ok(s
            .read()
            .map_err(anyhow::Error::msg)
            .context("reading the recipe's seed")?
            .into_bytes()),
        None => {
            let mut b = vec![0u8; 32];
            getrandom(&mut b)?;
            Ok(b)
        }
    }
}

fn getrandom(buf: &mut [u8]) -> Result<()> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")?.read_exact(buf)?;
    Ok(())
}

/// Plans every node to build.
pub fn plan_all(
    recipe: &ResolvedRecipe,
    base: &PreparedBase,
    seed: &[u8],
    only: &[String],
) -> Result<Vec<NodePlan>> {
    for name in only {
        if recipe.node(name).is_none() {
            bail!("--node {name}: the recipe has no such node");
        }
    }
    recipe
        .selected()
        .filter(|n| only.is_empty() || only.contains(&n.name))
        .map(|n| {
            plan_node(
                recipe,
                n,
                &base.profile,
                base.disk_id,
                base.uses_partuuid,
                seed,
            )
            .map_err(Into::into)
        })
        .collect()
}

fn output_spec(recipe: &ResolvedRecipe) -> OutputSpec {
    let mut formats = Vec::new();
    let mut bmap = false;
    for f in &recipe.output.formats {
        match f {
            OutputFormat::Img => formats.push(Compression::None),
            OutputFormat::ImgZst => formats.push(Compression::Zstd),
            OutputFormat::ImgXz => formats.push(Compression::Xz),
            OutputFormat::ImgGz => formats.push(Compression::Gzip),
            OutputFormat::Bmap => bmap = true,
        }
    }
    OutputSpec {
        formats,
        bmap,
        // A full read and hash of every node's image: only the Imager manifest needs it
        // (`extract_sha256`; a raw output's own digest is that hash anyway).
        image_sha256: recipe.output.imager_manifest,
        sync: true,
    }
}

/// Builds the recipe's nodes.
pub fn build(
    recipe: &ResolvedRecipe,
    cache: &Cache,
    opts: &BuildOptions,
    progress: &dyn Progress,
) -> Result<BuildReport> {
    let base_image = source::resolve(&recipe.base, cache, progress)?;
    let mut base = prepare_base(&base_image.raw_path)?;
    if let Some(size) = recipe.output.size {
        base = base.grow(size)?;
    }
    let seed = seed_bytes(recipe)?;
    let plans = plan_all(recipe, &base, &seed, &opts.only)?;
    if plans.is_empty() {
        bail!("the recipe selects no node to build");
    }
    let dir = opts
        .out_dir
        .clone()
        .unwrap_or_else(|| recipe.output.dir.clone());
    // From here on a signal stops the build through the checks in the output loops, which
    // remove what they started.
    let _polling = crate::cancel::polling();
    crate::cancel::check()?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    // Partial files left by an interrupted earlier build (never under a final name).
    crate::output::sweep_partials(&dir)?;
    let spec = output_spec(recipe);
    let mut base_cache = BaseCache::new(Arc::clone(&base.storage), CacheConfig::new(&dir))?;
    if base.growth.is_none() {
        // Raw outputs start as a clone of the file (a grown image is streamed instead).
        base_cache = base_cache.with_base_file(&base.path);
    }
    let jobs = if opts.jobs == 0 {
        std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
    } else {
        opts.jobs
    };
    let epoch = recipe.epoch;

    let mut outputs = Vec::new();
    // Batches bound memory: each node's overlay lives only until its outputs are written.
    for batch in plans.chunks(jobs.max(1) * 2) {
        let mut disks = Vec::new();
        for p in batch {
            let disk = Arc::new(CowDisk::new(Arc::clone(&base.storage)));
            if let Some(id) = p.disk_id {
                set_disk_id(&disk, id)?;
            }
            apply_node(&disk, &base.layout, &p.ops, epoch)
                .with_context(|| format!("node {}", p.name))?;
            disks.push(disk);
        }
        let images: Vec<NodeImage<'_>> = batch
            .iter()
            .zip(&disks)
            .map(|(p, d)| {
                let stem = recipe.node(&p.name).map_or_else(
                    || p.name.clone(),
                    |n| recipe.output.file_stem(&recipe.cluster.name, n),
                );
                NodeImage::from_cow(stem, &**d)
            })
            .collect::<std::io::Result<_>>()?;
        outputs.extend(build_nodes(
            &base_cache,
            &images,
            &dir,
            &spec,
            jobs,
            progress,
        )?);
    }
    let mut cluster_files = vec![write_sha256sums(&dir, &outputs, true)?];
    cluster_files.extend(write_cluster_files(recipe, &plans, &seed, &dir)?);
    if recipe.output.imager_manifest {
        cluster_files.push(write_manifest(recipe, &outputs, &dir)?);
    }
    Ok(BuildReport {
        dir,
        nodes: outputs,
        cluster_files,
        warnings: base.layout.table.warnings.clone(),
    })
}

/// Writes `hosts`, `known_hosts`, `ssh_config` and `inventory.yaml` into `dir`. With a recipe
/// seed, host keys derive from it, so `known_hosts` also names the cluster's nodes this build
/// did not make (their images, built from the same seed, carry the same keys).
pub fn write_cluster_files(
    recipe: &ResolvedRecipe,
    plans: &[NodePlan],
    seed: &[u8],
    dir: &Path,
) -> Result<Vec<PathBuf>> {
    let nodes: Vec<ClusterNode> = recipe
        .nodes
        .iter()
        .map(|n| {
            let plan = plans.iter().find(|p| p.name == n.name);
            ClusterNode {
                name: n.name.clone(),
                fqdn: n.fqdn.clone(),
                address: n.address.map(|a| a.ip.to_string()),
                role: n.role.clone(),
                host_key: match plan {
                    Some(p) => p.host_key.as_ref().map(|k| k.public_key.clone()),
                    None if recipe.seed.is_some()
                        && n.ssh.host_keys == crate::recipe::HostKeys::Generate =>
                    {
                        let mut rng = derived_rng(seed, "ssh-host-ed25519", &n.name);
                        ed25519(&n.hostname, &mut rng).ok().map(|k| k.public_key)
                    }
                    None => None,
                },
                user: plan.and_then(|p| p.login_user.clone()).or_else(|| {
                    n.users
                        .iter()
                        .find(|u| !u.authorized_keys.is_empty())
                        .map(|u| u.name.clone())
                }),
                proxy_jump: n.network.route_via.clone(),
            }
        })
        .collect();
    let kh = dir.join("known_hosts");
    let abs_kh = std::path::absolute(&kh).unwrap_or(kh.clone());
    let files = [
        ("hosts", hosts(&nodes)),
        ("known_hosts", known_hosts(&nodes)),
        (
            "ssh_config",
            ssh_config(&nodes, &abs_kh.display().to_string()),
        ),
        ("inventory.yaml", inventory(&nodes)),
    ];
    files
        .into_iter()
        .map(|(name, text)| write_whole(&dir.join(name), &text))
        .collect()
}

/// Writes `text` to `path` through a partial file renamed into place when complete, as every
/// output is.
fn write_whole(path: &Path, text: &str) -> Result<PathBuf> {
    use std::io::Write as _;
    let mut f = crate::output::PartialFile::create(path)?;
    f.file_mut()
        .write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(f.commit(true)?)
}

/// Writes `CLUSTER.rpi-imager-manifest` listing every node image (`init_format: none`: the
/// images are already customised, so Imager must not add its own first-boot settings).
pub fn write_manifest(
    recipe: &ResolvedRecipe,
    outputs: &[NodeOutputs],
    dir: &Path,
) -> Result<PathBuf> {
    use crate::output::OutputKind;
    use crate::output::manifest::{FileDigest, ImageEntry, arm64_devices, manifest, release_date};
    let dir = std::path::absolute(dir)?;
    let date = release_date(u64::try_from(recipe.epoch).unwrap_or(0));
    let mut entries = Vec::new();
    for n in outputs {
        let Some(extract_sha) = n.image_sha256 else {
            continue;
        };
        // Imager reads .xz, .gz, .zst and raw; prefer the smallest download.
        let image = n
            .files
            .iter()
            .filter(|f| matches!(f.kind, OutputKind::Image(_)))
            .min_by_key(|f| f.size);
        let Some(image) = image else { continue };
        let path = dir.join(image.path.file_name().unwrap_or_default());
        let extract = FileDigest {
            size: n.image_size,
            sha256: extract_sha.to_string(),
        };
        let download = FileDigest {
            size: image.size,
            sha256: image.sha256.to_string(),
        };
        let name = format!("{} {} (piimage)", recipe.cluster.name, n.name);
        let mut entry = ImageEntry::customised(name, &path, download, extract, date.clone())?;
        if let Some(b) = n.files.iter().find(|f| f.kind == OutputKind::Bmap) {
            entry = entry.with_bmap(&dir.join(b.path.file_name().unwrap_or_default()))?;
        }
        entries.push(entry);
    }
    let m = manifest(&entries, &arm64_devices());
    let path = dir.join(crate::output::manifest::Manifest::file_name(
        &recipe.cluster.name,
    ));
    write_whole(&path, &m.to_json())
}
