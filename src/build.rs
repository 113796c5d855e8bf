//! `piimage build`: from a resolved recipe to one image per node, plus the cluster files.
//!
//! 1. the base is resolved (downloaded, verified, decompressed once into the cache) and opened
//!    read-only; its layout and OS [`Profile`] are read once;
//! 2. every selected node is planned (no I/O on the image; errors stop the build before any
//!    output is written);
//! 3. the output directory is locked ([`DirLock`]: one writer at a time) and checked: records
//!    of another cluster or seed, or files of the names the build will write that piimage did
//!    not write ([`check_foreign`]), stop the build;
//! 4. nodes are applied to copy-on-write disks and streamed to their outputs, in batches so
//!    memory stays bounded; every output stays under a temporary name until **all** nodes are
//!    complete and the base is checked unchanged ([`FilePin`]); then they are renamed together,
//!    so a build that fails or is stopped leaves the directory as it was;
//! 5. each node's record (its files, sizes, sha256, host key, addresses) is written under
//!    `records/`, and `SHA256SUMS`, `hosts`, `known_hosts`, `ssh_config`, `inventory.yaml` and
//!    (if asked) the Raspberry Pi Imager manifest are rendered from every record in the
//!    directory ([`crate::cluster`]), so several builds into one directory add up.
//!
//! `--shard K/N` builds every N-th selected node, starting with the K-th ([`Shard`]); the
//! shards' directories are combined by [`crate::cluster::merge`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};

use crate::cluster::record::{
    FileRecord, Identity, ImageRecord, NodeRecord, RECORD_FORMAT, RecordKind, RecordSet,
    record_path, seed_id,
};
use crate::cluster::{RenderOptions, check_foreign, render, write_whole};
use crate::disk::partition::DiskId;
use crate::disk::source::{self, Cache};
use crate::disk::{CowDisk, Storage};
use crate::fs::ext4::Ext4Reader;
use crate::inspect::human_bytes;
use crate::io::pin::FilePin;
use crate::output::manifest::{BaseUrl, release_date};
use crate::output::{
    BaseCache, CacheConfig, DirLock, NodeImage, NodeOutputSpec, NodeOutputs, OutputKind,
    PieceStore, commit_pending, write_nodes,
};
use crate::plan::cluster::ClusterNode;
use crate::plan::image_checks::check_nodes;
use crate::plan::node::{NodePlan, plan_node};
use crate::plan::profile::Profile;
use crate::plan::user_checks::check_users;
use crate::progress::Progress;
use crate::recipe::{OutputFormat, ResolvedRecipe};
use crate::secrets::derive;

use crate::fs::fat::FatReader;
use crate::image::{BaseImage, ImageError, Layout, PartWindow};
use crate::pipeline::apply_node;
use crate::pipeline::grow::{Growth, grow_root};
use crate::pipeline::identity::set_disk_id;

/// Options of a build that are not in the recipe.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Parallel node builds (0: one per core).
    pub jobs: usize,
    /// Output directory instead of the recipe's.
    pub out_dir: Option<PathBuf>,
    /// Build only these nodes (names); empty: every selected node.
    pub only: Vec<String>,
    /// Build only this share of them.
    pub shard: Option<Shard>,
    /// Base URL of the manifest's images instead of the recipe's `output.base_url`.
    pub base_url: Option<BaseUrl>,
}

/// `--shard K/N`: the K-th of N shares of the nodes to build (1 <= K <= N). Node `i` (0-based,
/// in recipe order, after `--node`) belongs to shard `i mod N + 1`, so shards differ in size
/// by at most one node and every role is spread over them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// K, from 1.
    pub index: usize,
    /// N.
    pub count: usize,
}

impl Shard {
    /// Whether the node at `position` belongs to this shard.
    #[must_use]
    pub fn contains(self, position: usize) -> bool {
        position % self.count + 1 == self.index
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?}: a shard is K/N with 1 <= K <= N, e.g. 2/4");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let index: usize = k.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(Self { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// What a build wrote.
#[derive(Debug, Clone)]
pub struct BuildReport {
    /// Output directory.
    pub dir: PathBuf,
    /// Per node, its outputs.
    pub nodes: Vec<NodeOutputs>,
    /// Cluster files written, and the netboot output's files (`netboot/...`).
    pub cluster_files: Vec<PathBuf>,
    /// Per node, its netboot output (empty unless `output.formats` lists `netboot`).
    pub netboot: Vec<crate::netboot::NodeNetboot>,
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
    /// The names in the boot partition's `overlays/` directory (`None`: it has none).
    pub boot_overlays: Option<Vec<String>>,
    /// The file as it was opened: [`FilePin::check`] says whether it changed since.
    pub pin: FilePin,
}

impl std::fmt::Debug for PreparedBase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedBase")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Everything a build, a plan or a validation with `--base` needs before anything is written:
/// the base resolved (downloaded or decoded into the cache), opened and grown to
/// `output.size`, the seed, and the plan of every selected node (checked against the image).
#[derive(Debug)]
pub struct Prepared {
    /// The base, as every node starts from it.
    pub base: PreparedBase,
    /// The seed bytes ([`seed_bytes`]).
    pub seed: Vec<u8>,
    /// The selected nodes' plans, in recipe order.
    pub plans: Vec<NodePlan>,
    /// Where the base came from (its source's sha256 keys the kept compressed base).
    pub source: crate::disk::source::ResolvedBase,
}

/// Prepares `recipe` for the nodes `only` names (all when empty) of `shard`.
///
/// # Errors
/// The base cannot be resolved, read or grown, or a node's plan fails its checks.
pub fn prepare(
    recipe: &ResolvedRecipe,
    cache: &Cache,
    only: &[String],
    shard: Option<Shard>,
    progress: &dyn Progress,
) -> Result<Prepared> {
    let base_image = source::resolve(&recipe.base, cache, progress)?;
    let mut base = prepare_base(&base_image.raw_path)?;
    if let Some(size) = recipe.output.size {
        base = base.grow(size)?;
    }
    if let Some(device) = recipe.output.device_size {
        base.check_fits(device)?;
    }
    let seed = seed_bytes(recipe)?;
    let plans = plan_all(recipe, &base, &seed, only, shard)?;
    Ok(Prepared {
        base,
        seed,
        plans,
        source: base_image,
    })
}

/// Opens and reads the raw base image at `path`.
pub fn prepare_base(path: &Path) -> Result<PreparedBase> {
    let in_base = || path.display().to_string();
    let image = BaseImage::open(path).map_err(|e| match e {
        // These name the file already.
        ImageError::Open { .. } | ImageError::Pin(_) => anyhow::Error::new(e),
        e => anyhow::Error::new(e).context(in_base()),
    })?;
    let root = image
        .root()
        .with_context(in_base)?
        .with_context(|| format!("{}: no ext4 root partition", path.display()))?;
    let boot = image.boot_facts().with_context(in_base)?;
    let profile = Profile::read(&root.reader, boot.cmdline_tokens(), &boot.files)?;
    drop(root);
    let disk_id = match image.layout().table.disk_id {
        DiskId::Mbr(id) => Some(id),
        DiskId::Gpt(_) => None,
    };
    let uses_partuuid = boot
        .cmdline_tokens()
        .iter()
        .any(|t| t.starts_with("root=PARTUUID="));
    let (path, storage, layout, pin) = image.into_parts();
    Ok(PreparedBase {
        path,
        storage,
        growth: None,
        layout,
        profile,
        disk_id,
        uses_partuuid,
        boot_overlays: boot.overlays,
        pin,
    })
}

impl PreparedBase {
    /// A reader of the root filesystem as the nodes start from it (grown, if it was).
    ///
    /// # Errors
    /// The filesystem cannot be opened.
    pub fn root_reader(&self) -> Result<Option<Ext4Reader>, ImageError> {
        self.layout
            .root
            .as_ref()
            .map(|p| crate::image::open_ext4(&self.storage, p).map(|o| o.reader))
            .transpose()
    }

    /// A reader of the boot filesystem as the nodes start from it.
    ///
    /// # Errors
    /// The filesystem cannot be opened.
    pub fn boot_reader(&self) -> Result<Option<FatReader<PartWindow>>, ImageError> {
        self.layout
            .boot
            .as_ref()
            .map(|p| crate::image::open_fat(&self.storage, p).map(|o| o.reader))
            .transpose()
    }

    /// Checks the image fits a device of `device` bytes (`output.device_size`).
    ///
    /// # Errors
    /// The image is larger than the device.
    pub fn check_fits(&self, device: u64) -> Result<()> {
        let len = self.storage.len();
        if len > device {
            let from = if self.growth.is_some() {
                "output.size".to_owned()
            } else {
                format!("the base image {}", self.path.display())
            };
            bail!(
                "output.device_size: the image ({len} bytes, {}, from {from}) is larger than \
                 the device ({device} bytes, {}): a device that small would cut off the root \
                 filesystem; name the smallest device you will write to, or start from a \
                 smaller base",
                human_bytes(len),
                human_bytes(device)
            );
        }
        Ok(())
    }

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

/// Checks the nodes to build against what only the base image knows (time zone, locale,
/// keyboard layout, `dtoverlay=` files; see [`crate::plan::image_checks`]).
///
/// # Errors
/// A [`RecipeError`](crate::recipe::RecipeError) with every problem, each naming its recipe
/// file, line, column and field.
pub fn check_image(recipe: &ResolvedRecipe, base: &PreparedBase, only: &[String]) -> Result<()> {
    let nodes = || {
        recipe
            .selected()
            .filter(|n| only.is_empty() || only.contains(&n.name))
    };
    let mut problems = Vec::new();
    if let Err(e) = check_nodes(
        nodes(),
        &base.profile.catalog,
        base.boot_overlays.as_deref(),
    ) {
        problems.extend(e.problems);
    }
    let reader = base.root_reader()?;
    let is_file = |path: &str| {
        reader.as_ref().is_some_and(|r| {
            matches!(
                r.kind(path, true),
                Ok(Some(crate::fs::ext4::FileKind::File))
            )
        })
    };
    if let Err(e) = check_users(nodes(), &base.profile, &is_file) {
        for p in e.problems {
            if !problems.contains(&p) {
                problems.push(p);
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        problems.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
        Err(crate::recipe::RecipeError { problems }.into())
    }
}

/// Plans every node to build, after [`check_image`]: the selected ones, or those of `only`, and
/// of those the shard's.
pub fn plan_all(
    recipe: &ResolvedRecipe,
    base: &PreparedBase,
    seed: &[u8],
    only: &[String],
    shard: Option<Shard>,
) -> Result<Vec<NodePlan>> {
    for name in only {
        if recipe.node(name).is_none() {
            bail!("--node {name}: the recipe has no such node");
        }
    }
    check_image(recipe, base, only)?;
    let extras = crate::plan::template_secrets::TemplateSecrets::new(recipe, seed)?;
    recipe
        .selected()
        .filter(|n| only.is_empty() || only.contains(&n.name))
        .enumerate()
        .filter(|(i, _)| shard.is_none_or(|s| s.contains(*i)))
        .map(|(_, n)| {
            plan_node(
                recipe,
                n,
                &base.profile,
                base.disk_id,
                base.uses_partuuid,
                seed,
                &extras,
            )
            .map_err(Into::into)
        })
        .collect()
}

fn output_spec(recipe: &ResolvedRecipe) -> NodeOutputSpec {
    let mut formats = Vec::new();
    let mut bmap = false;
    for f in &recipe.output.formats {
        match f.image() {
            Some(format) => formats.push(format),
            None if *f == OutputFormat::Bmap => bmap = true,
            // Netboot is written from the node's disk after its images (`crate::netboot`).
            None => {}
        }
    }
    NodeOutputSpec {
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
    let Prepared {
        base,
        seed,
        plans,
        source: base_image,
    } = prepare(recipe, cache, &opts.only, opts.shard, progress)?;
    if plans.is_empty() && opts.shard.is_none() {
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
    // One writer at a time: the lock is held until the build returns.
    let _lock = DirLock::acquire(&dir, "build")?;
    // Records of another cluster or seed stop the build before it writes anything.
    let identity = Identity {
        cluster: recipe.cluster.name.clone(),
        seed_id: recipe.seed.as_ref().map(|_| seed_id(&seed)),
    };
    let existing = RecordSet::read_dir(&dir, "build")?;
    existing.check(&identity, "build")?;
    let spec = output_spec(recipe);
    let stems: Vec<String> = plans.iter().map(|p| node_stem(recipe, p)).collect();
    let node_files: Vec<String> = stems
        .iter()
        .flat_map(|stem| output_file_names(&spec, stem))
        .collect();
    check_foreign(&dir, &existing, &recipe.cluster.name, &node_files)?;
    // Partial files left by an interrupted earlier build (never under a final name; no other
    // build is running here, it would hold the lock).
    crate::output::sweep_partials(&dir)?;
    for sub in ["", "roots"] {
        let d = dir.join(crate::netboot::NETBOOT_DIR).join(sub);
        if d.is_dir() {
            crate::output::sweep_partials(&d)?;
        }
    }
    let mut base_cache = BaseCache::new(Arc::clone(&base.storage), CacheConfig::new(&dir))?;
    if let Some(sha256) = &base_image.source_sha256 {
        // Compressed pieces of this base kept across builds (see crate::output::store).
        let store = PieceStore::new(cache.root().join("compressed"), sha256, base.storage.len());
        base_cache = base_cache.with_store(store);
    }
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
    let mut pending = Vec::new();
    let mut netboot = Vec::new();
    // Batches bound memory: each node's overlay lives only until its outputs are written.
    for (batch, batch_stems) in plans
        .chunks(jobs.max(1) * 2)
        .zip(stems.chunks(jobs.max(1) * 2))
    {
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
        let images: Vec<NodeImage<'_>> = batch_stems
            .iter()
            .zip(&disks)
            .map(|(stem, d)| NodeImage::from_cow(stem.clone(), &**d))
            .collect::<std::io::Result<_>>()?;
        for node in write_nodes(&base_cache, &images, &dir, &spec, jobs, progress)? {
            outputs.push(node.outputs);
            pending.extend(node.files);
        }
        // A base written to meanwhile fails the build now rather than after every node.
        base.pin.check()?;
        if let Some(nb) = netboot_spec(recipe) {
            for (p, d) in batch.iter().zip(&disks) {
                crate::cancel::check()?;
                let Some(n) = recipe.node(&p.name) else {
                    continue;
                };
                let stem = recipe.output.file_stem(&recipe.cluster.name, n);
                netboot.push(crate::netboot::write_node(
                    d,
                    &base.layout,
                    nb,
                    n,
                    &stem,
                    epoch,
                    &dir,
                )?);
            }
        }
    }
    // Everything is complete: the images appear together, then their records and the
    // cluster files rendered from them.
    crate::cancel::check()?;
    base.pin.check()?;
    let mut warnings = base.layout.table.warnings.clone();
    if let Err(e) = base_cache.persist() {
        // Only the next build's speed depends on it.
        warnings.push(format!(
            "keeping the compressed base for the next build: {}",
            crate::error::chain(&e)
        ));
    }
    commit_pending(pending, spec.sync)?;
    let netboot = netboot
        .into_iter()
        .map(crate::netboot::PendingNetboot::commit)
        .collect::<Result<Vec<_>, _>>()?;
    write_records(recipe, &plans, &outputs, &seed, &identity, &dir)?;
    let set = RecordSet::read_dir(&dir, "build")?;
    let render_opts = RenderOptions {
        base_url: opts
            .base_url
            .clone()
            .or_else(|| recipe.output.base_url.clone()),
    };
    let mut cluster_files = render(&dir, &set, &render_opts)?;
    if let Some(nb) = netboot_spec(recipe) {
        cluster_files.extend(crate::netboot::write_server_files(
            &dir,
            nb,
            &recipe.cluster.name,
            &served_nodes(recipe),
        )?);
        for n in &netboot {
            cluster_files.push(n.tftp_dir.clone());
            cluster_files.push(n.archive.clone());
        }
    }
    Ok(BuildReport {
        dir,
        nodes: outputs,
        cluster_files,
        netboot,
        warnings,
    })
}

/// The file stem of a planned node's outputs.
fn node_stem(recipe: &ResolvedRecipe, p: &NodePlan) -> String {
    recipe.node(&p.name).map_or_else(
        || p.name.clone(),
        |n| recipe.output.file_stem(&recipe.cluster.name, n),
    )
}

/// The file names a node of stem `stem` gets: its images and its bmap.
fn output_file_names(spec: &NodeOutputSpec, stem: &str) -> Vec<String> {
    let mut names: Vec<String> = spec
        .formats
        .iter()
        .map(|&f| NodeOutputSpec::image_file_name(stem, f))
        .collect();
    if spec.bmap {
        names.push(NodeOutputSpec::bmap_file_name(stem));
    }
    names
}

/// The recipe's `netboot:` section when its output formats list `netboot`.
fn netboot_spec(recipe: &ResolvedRecipe) -> Option<&crate::recipe::NetbootSpec> {
    recipe
        .netboot
        .as_ref()
        .filter(|_| recipe.output.formats.contains(&OutputFormat::Netboot))
}

/// Every selected node with a board id, as the server's files list them (whichever nodes this
/// build makes, so shards and `--node` builds write the same server files).
fn served_nodes(recipe: &ResolvedRecipe) -> Vec<crate::netboot::ServedNode> {
    recipe
        .selected()
        .filter_map(|n| {
            n.boot_id.as_ref().map(|b| crate::netboot::ServedNode {
                name: n.name.clone(),
                boot_dir: b.dir_name().to_owned(),
                archive: crate::netboot::archive_name(
                    &recipe.output.file_stem(&recipe.cluster.name, n),
                ),
            })
        })
        .collect()
}

/// The record kind of an output file: `img`, `img.zst`, `img.xz`, `img.gz` or `bmap`.
fn kind_name(kind: OutputKind) -> &'static str {
    match kind {
        OutputKind::Image(format) => format.extension(),
        OutputKind::Bmap => "bmap",
    }
}

/// Writes a built record for every node of `plans` (whose outputs are `outputs`, in the same
/// order) and a declared record for every other node
/// of the recipe (a node's built record from an earlier build stays; its declared record is then
/// ignored).
pub fn write_records(
    recipe: &ResolvedRecipe,
    plans: &[NodePlan],
    outputs: &[NodeOutputs],
    seed: &[u8],
    identity: &Identity,
    dir: &Path,
) -> Result<Vec<PathBuf>> {
    let date = release_date(u64::try_from(recipe.epoch).unwrap_or(0));
    let mut written = Vec::new();
    for n in &recipe.nodes {
        // `outputs` are in the order of `plans` (one per plan).
        let position = plans.iter().position(|p| p.name == n.name);
        let plan = position.map(|i| &plans[i]);
        let image = position.and_then(|i| outputs.get(i)).map(|o| ImageRecord {
            size: o.image_size,
            sha256: o.image_sha256,
            release_date: date.clone(),
            files: o
                .files
                .iter()
                .map(|f| FileRecord {
                    name: f
                        .path
                        .file_name()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    kind: kind_name(f.kind).to_owned(),
                    size: f.size,
                    sha256: f.sha256,
                })
                .collect(),
        });
        let kind = if image.is_some() {
            RecordKind::Built
        } else {
            RecordKind::Declared
        };
        let record = NodeRecord {
            piimage_record: RECORD_FORMAT,
            cluster: identity.cluster.clone(),
            seed_id: identity.seed_id.clone(),
            node: cluster_node(recipe, n, plan, seed),
            image,
        };
        written.push(write_whole(
            &record_path(dir, kind, &n.name),
            &record.to_json(),
        )?);
    }
    Ok(written)
}

/// How the operator's machine sees `n`. With a recipe seed, the host key of a node this build
/// did not plan derives from it too, so `known_hosts` also names the cluster's nodes this build
/// did not make (their images, built from the same seed, carry the same keys).
fn cluster_node(
    recipe: &ResolvedRecipe,
    n: &crate::recipe::NodeSpec,
    plan: Option<&NodePlan>,
    seed: &[u8],
) -> ClusterNode {
    ClusterNode {
        name: n.name.clone(),
        hostname: n.hostname.clone(),
        fqdn: n.fqdn.clone(),
        // The laptop's files reach a multi-homed node at its access address.
        address: n
            .access_address
            .or(n.address.map(|a| a.ip))
            .map(|ip| ip.to_string()),
        role: n.role.clone(),
        host_key: match plan {
            Some(p) => p.host_key.as_ref().map(|k| k.public_key.clone()),
            None if recipe.seed.is_some()
                && n.ssh.host_keys == crate::recipe::HostKeys::Generate =>
            {
                derive::host_key(seed, &n.name, &n.hostname)
                    .ok()
                    .map(|k| k.public_key)
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
        identity_file: n.ssh.identity_file.clone(),
        identities_only: n.ssh.identities_only,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_split_round_robin() {
        let s: Shard = "2/4".parse().unwrap();
        assert_eq!(s, Shard { index: 2, count: 4 });
        assert_eq!(s.to_string(), "2/4");
        let members: Vec<usize> = (0..10).filter(|&i| s.contains(i)).collect();
        assert_eq!(members, [1, 5, 9]);
        // Every position is in exactly one shard.
        for i in 0..10 {
            let owners = (1..=4)
                .filter(|&k| Shard { index: k, count: 4 }.contains(i))
                .count();
            assert_eq!(owners, 1, "{i}");
        }
        for bad in ["0/4", "5/4", "1", "a/b", "1/0", "-1/4", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}
