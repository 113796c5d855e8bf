//! Broken recipes: each is refused by `piimage validate` with an error naming the file, the line
//! (the line marked `#<` in the case, else line 1) and the field, and nothing is written.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use super::{KEY, snapshot, validate};

/// Every case starts with these two lines (a cluster name and a base that exists).
const HEAD: &str = "cluster: { name: lab }\nbase: { path: base.img }\n";

struct Case {
    name: &'static str,
    /// Recipe text after [`HEAD`] (unless `no_head`); `#<` marks the line the error is at.
    yaml: &'static str,
    /// Field path the error must name.
    field: &'static str,
    /// Text the message must contain.
    message: &'static str,
    /// Extra files (`path`, contents) and links, set up before validating.
    setup: fn(&Path),
    /// The recipe is `yaml` alone.
    no_head: bool,
    /// The file the error is in (default `recipe.yaml`).
    file: &'static str,
}

const fn case(
    name: &'static str,
    yaml: &'static str,
    field: &'static str,
    message: &'static str,
) -> Case {
    Case {
        name,
        yaml,
        field,
        message,
        setup: |_| {},
        no_head: false,
        file: "recipe.yaml",
    }
}

fn write(dir: &Path, path: &str, text: &str) {
    let p = dir.join(path);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

fn overlay(dir: &Path) {
    write(dir, "ov/etc/motd", "hello\n");
}

#[allow(clippy::too_many_lines, reason = "one table")]
fn cases() -> Vec<Case> {
    vec![
        case(
            "unknown field (typo)",
            "nodes: [{ name: n1 }]\nusers:\n  - name: alice\n    shel: /bin/sh #<\n",
            "users[0].shel",
            "unknown field `shel`",
        ),
        case(
            "unknown top-level field",
            "nodes: [{ name: n1 }]\nnetwrok: {} #<\n",
            "netwrok",
            "unknown field `netwrok`",
        ),
        case(
            "bad type: string for an integer",
            "nodes: [{ name: n1 }]\nepoch: yesterday #<\n",
            "epoch",
            "invalid",
        ),
        case(
            "bad type: not a boolean",
            "nodes: [{ name: n1 }]\nssh:\n  enable: maybe #<\n",
            "ssh.enable",
            "bool",
        ),
        case(
            "issue10 identity_file relative",
            "nodes: [{ name: n1 }]\nssh:\n  identity_file: keys/id_ed25519 #<\n",
            "ssh.identity_file",
            "`~/...` or an absolute path",
        ),
        case(
            "issue10 identity_file is a public key",
            "nodes: [{ name: n1 }]\nssh:\n  identity_file: ~/.ssh/id_ed25519.pub #<\n",
            "ssh.identity_file",
            "is a public key",
        ),
        case(
            "issue10 identity_file with an Ansible template",
            "nodes: [{ name: n1 }]\nssh:\n  identity_file: \"~/{{ k }}\" #<\n",
            "ssh.identity_file",
            "would be expanded",
        ),
        case(
            "issue10 identities_only without a key",
            "nodes: [{ name: n1 }]\nssh:\n  identities_only: true #<\n",
            "ssh.identities_only",
            "needs `identity_file`",
        ),
        case(
            "issue10 base_url not a URL",
            "nodes: [{ name: n1 }]\noutput:\n  base_url: downloads/pico #<\n",
            "output.base_url",
            "starts with https://",
        ),
        case(
            "bad type: mapping for a list",
            "nodes: [{ name: n1 }]\nusers: { name: alice } #<\n",
            "users",
            "sequence",
        ),
        case(
            "YAML syntax error",
            "nodes: [{ name: n1 }\nusers: [] #<\n",
            "nodes",
            "",
        ),
        case(
            "bad SSH key inline",
            "nodes: [{ name: n1 }]\nusers:\n  - name: alice\n    ssh_authorized_keys:\n      - \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBROKEN alice@x\" #<\n",
            "users[0].ssh_authorized_keys[0]",
            "not an OpenSSH public key",
        ),
        case(
            "private key where a public key goes",
            "nodes: [{ name: n1 }]\nusers:\n  - name: alice\n    ssh_authorized_keys: [\"-----BEGIN OPENSSH PRIVATE KEY-----\"] #<\n",
            "users[0].ssh_authorized_keys[0]",
            "private key",
        ),
        case(
            "SSH key file missing",
            "nodes: [{ name: n1 }]\nusers:\n  - name: alice\n    ssh_authorized_keys:\n      - { file: keys/missing.pub } #<\n",
            "users[0].ssh_authorized_keys[0].file",
            "missing.pub: No such file",
        ),
        Case {
            setup: |d| {
                write(
                    d,
                    "keys/team.pub",
                    &format!("# team keys\n{KEY}\nnot a key\n"),
                )
            },
            ..case(
                "bad key inside a key file",
                "nodes: [{ name: n1 }]\nusers:\n  - name: alice\n    ssh_authorized_keys:\n      - { file: keys/team.pub } #<\n",
                "users[0].ssh_authorized_keys[0].file",
                "team.pub line 3: not an OpenSSH public key",
            )
        },
        case(
            "bad node address",
            "nodes:\n  - name: n1\n    address: 10.0.0.300/24 #<\n",
            "nodes[0].address",
            "not an address with prefix",
        ),
        case(
            "interface address without prefix",
            "nodes: [{ name: n1 }]\nnetwork:\n  interfaces:\n    eth0:\n      addresses: [10.0.0.5] #<\n",
            "network.interfaces.eth0.addresses[0]",
            "no prefix length",
        ),
        case(
            "network address as a host",
            "nodes:\n  - name: n1\n    address: 10.0.0.0/24 #<\n",
            "nodes[0].address",
            "network address",
        ),
        case(
            "duplicate node name",
            "nodes:\n  - name: n1\n  - name: n1 #<\n",
            "nodes[1].name",
            "duplicate node name \"n1\"",
        ),
        case(
            "duplicate address",
            "nodes:\n  - { name: n1, address: 10.0.0.11/24 }\n  - { name: n2, address: 10.0.0.11 } #<\n",
            "nodes[1].address",
            "duplicate address 10.0.0.11",
        ),
        case(
            "node name not a hostname",
            "nodes:\n  - name: Node_1 #<\n",
            "nodes[0].name",
            "not a valid hostname",
        ),
        case(
            "no nodes",
            "nodes: [] #<\n",
            "nodes",
            "list at least one node",
        ),
        Case {
            no_head: true,
            ..case(
                "missing base",
                "cluster: { name: lab }\nnodes: [{ name: n1 }]\n",
                "base",
                "no base image",
            )
        },
        Case {
            no_head: true,
            ..case(
                "bad sha256",
                "cluster: { name: lab }\nbase:\n  url: https://example.org/os.img.xz\n  sha256: abc123 #<\nnodes: [{ name: n1 }]\n",
                "base.sha256",
                "expected 64 hex digits",
            )
        },
        Case {
            no_head: true,
            ..case(
                "URL without sha256",
                "cluster: { name: lab }\nbase:\n  url: https://example.org/os.img.xz #<\nnodes: [{ name: n1 }]\n",
                "base",
                "needs `sha256`",
            )
        },
        Case {
            no_head: true,
            ..case(
                "base path missing",
                "cluster: { name: lab }\nbase: { path: images/nope.img.xz } #<\nnodes: [{ name: n1 }]\n",
                "base.path",
                "nope.img.xz: No such file",
            )
        },
        case(
            "bad user name",
            "nodes: [{ name: n1 }]\nusers:\n  - name: Alice #<\n",
            "users[0].name",
            "not a valid name",
        ),
        case(
            "reserved user name",
            "nodes: [{ name: n1 }]\nusers:\n  - name: root #<\n",
            "users[0].name",
            "system account",
        ),
        case(
            "duplicate uid",
            "nodes: [{ name: n1 }]\nusers:\n  - { name: alice, uid: 1001 }\n  - { name: bob, uid: 1001 } #<\n",
            "users[1].uid",
            "uid 1001 is already used",
        ),
        case(
            "uid in the system range",
            "nodes: [{ name: n1 }]\nusers:\n  - name: alice\n    uid: 999 #<\n",
            "users[0].uid",
            "outside the range",
        ),
        case(
            "bad password hash",
            "nodes: [{ name: n1 }]\nusers:\n  - name: alice\n    password: { hash: \"$1$abc$def\" } #<\n",
            "users[0].password.hash",
            "not a crypt(3) hash",
        ),
        case(
            "plaintext password",
            "nodes: [{ name: n1 }]\nusers:\n  - name: alice\n    password: hunter22 #<\n",
            "users[0].password",
            "plaintext",
        ),
        case(
            "sudo with password but none set",
            "nodes: [{ name: n1 }]\nusers:\n  - name: alice\n    sudo: password #<\n",
            "users[0].sudo",
            "needs a usable password",
        ),
        case(
            "overlay directory missing",
            "nodes: [{ name: n1 }]\noverlays:\n  - overlays/none #<\n",
            "overlays[0]",
            "No such file",
        ),
        Case {
            setup: overlay,
            ..case(
                "overlay dest escaping with ..",
                "nodes: [{ name: n1 }]\noverlays:\n  - source: ov\n    dest: /etc/../../root #<\n",
                "overlays[0].dest",
                "must not contain . or ..",
            )
        },
        Case {
            setup: |d| {
                overlay(d);
                symlink("/etc/passwd", d.join("ov/etc/passwd")).unwrap();
            },
            ..case(
                "overlay symlink escaping (absolute)",
                "nodes: [{ name: n1 }]\noverlays:\n  - source: ov #<\n",
                "overlays[0].source",
                "escapes the overlay directory",
            )
        },
        Case {
            setup: |d| {
                overlay(d);
                write(d, "secret.txt", "s3cret\n");
                symlink("../../secret.txt", d.join("ov/etc/leak")).unwrap();
            },
            ..case(
                "overlay symlink escaping with ..",
                "nodes: [{ name: n1 }]\noverlays:\n  - ov #<\n",
                "overlays[0]",
                "escapes the overlay directory",
            )
        },
        Case {
            setup: |d| {
                write(
                    d,
                    "ov/etc/app.conf.j2",
                    "name={{ node.name }}\n{% if x %}\nnever closed\n",
                )
            },
            ..case(
                "template syntax error",
                "nodes: [{ name: n1 }]\noverlays:\n  - ov #<\n",
                "overlays[0]",
                "app.conf.j2:2: syntax error",
            )
        },
        Case {
            setup: |d| {
                write(
                    d,
                    "ov/etc/app.conf.j2",
                    "name={{ node.name }}\nurl={{ api_url }}\n",
                )
            },
            ..case(
                "template undefined variable",
                "nodes: [{ name: n1 }]\noverlays:\n  - ov #<\n",
                "overlays[0]",
                "app.conf.j2:2: undefined value",
            )
        },
        case(
            "range syntax error",
            "nodes:\n  - range: w-{3..1} #<\n",
            "nodes[0].range",
            "the first bound is larger",
        ),
        case(
            "range without braces",
            "nodes:\n  - range: worker #<\n",
            "nodes[0].range",
            "not a range",
        ),
        case(
            "address pool exhausted",
            "nodes:\n  - range: w-{1..4}\n    addresses: 10.0.0.253/24+ #<\n",
            "nodes[0].addresses",
            "address pool exhausted",
        ),
        case(
            "mount target not absolute",
            "nodes: [{ name: n1 }]\nmounts:\n  - source: nas:/export\n    target: mnt/shared #<\n    type: nfs\n",
            "mounts[0].target",
            "not an absolute path",
        ),
        case(
            "cmdline token with spaces",
            "nodes: [{ name: n1 }]\nboot:\n  cmdline:\n    add: [\"cgroup_memory=1 cgroup_enable=memory\"] #<\n",
            "boot.cmdline.add[0]",
            "contains whitespace",
        ),
        case(
            "config.txt section with brackets",
            "nodes: [{ name: n1 }]\nboot:\n  config_txt:\n    - { line: arm_boost=1, section: \"[pi4]\" } #<\n",
            "boot.config_txt[0].section",
            "not a config.txt section",
        ),
        case(
            "unknown output format",
            "nodes: [{ name: n1 }]\noutput:\n  formats: [img.bz2] #<\n",
            "output.formats[0]",
            "unknown variant `img.bz2`",
        ),
        case(
            "Wi-Fi country not two letters",
            "nodes: [{ name: n1 }]\nnetwork:\n  interfaces:\n    wlan0:\n      wifi: { ssid: home, passphrase: longenough, country: GBR } #<\n",
            "network.interfaces.wlan0.wifi.country",
            "not a country code",
        ),
        case(
            "Wi-Fi passphrase too short",
            "nodes: [{ name: n1 }]\nnetwork:\n  interfaces:\n    wlan0:\n      wifi: { ssid: home, passphrase: short, country: GB } #<\n",
            "network.interfaces.wlan0.wifi.passphrase",
            "8 to 63",
        ),
        case(
            "gateway outside the subnet",
            "nodes:\n  - { name: n1, address: 10.0.0.11/24 }\nnetwork:\n  interfaces:\n    eth0: { gateway: 10.9.0.1 } #<\n",
            "network.interfaces.eth0.gateway",
            "not in the interface's subnet",
        ),
        case(
            "route_via an unknown node",
            "nodes: [{ name: n1 }]\nnetwork:\n  route_via: gw #<\n",
            "network.route_via",
            "no node is called \"gw\"",
        ),
        case(
            "build selects an unknown role",
            "nodes: [{ name: n1 }]\nbuild:\n  roles: [wroker] #<\n",
            "build.roles[0]",
            "no node has role \"wroker\"",
        ),
        case(
            "roles block no node uses",
            "nodes: [{ name: n1, role: worker }]\nroles:\n  wroker:\n    timezone: UTC #<\n",
            "roles.wroker",
            "no node has role \"wroker\"",
        ),
        case(
            "reserved variable name",
            "nodes: [{ name: n1 }]\nvars:\n  node: x #<\n",
            "vars.node",
            "reserved",
        ),
        case(
            "user-data that nothing reads",
            "nodes: [{ name: n1 }]\ncloud_init:\n  user_data:\n    packages: [htop] #<\n",
            "cloud_init.user_data",
            "only written in `mode: seed`",
        ),
        case(
            "password file missing",
            "nodes: [{ name: n1 }]\nusers:\n  - name: alice\n    password: { file: secrets/alice.txt } #<\n",
            "users[0].password",
            "alice.txt: No such file",
        ),
        case(
            "password variable unset",
            "nodes: [{ name: n1 }]\nusers:\n  - name: alice\n    password: { env: PIIMAGE_TEST_SURELY_UNSET } #<\n",
            "users[0].password",
            "$PIIMAGE_TEST_SURELY_UNSET",
        ),
        case(
            "password from both file and env",
            "nodes: [{ name: n1 }]\nusers:\n  - name: alice\n    password: { file: a, env: B } #<\n",
            "users[0].password",
            "either `file` or `env`",
        ),
        case(
            "duplicate user name",
            "nodes: [{ name: n1 }]\nusers:\n  - name: alice\n  - name: alice #<\n",
            "users[1].name",
            "already defined",
        ),
        case(
            "bad default_user",
            "nodes: [{ name: n1 }]\ndefault_user: delete #<\n",
            "default_user",
            "`keep`, `remove`",
        ),
        case(
            "sshd keyword with its own field",
            "nodes: [{ name: n1 }]\nssh:\n  extra:\n    PasswordAuthentication: yes #<\n",
            "ssh.extra.PasswordAuthentication",
            "use `ssh.password_authentication`",
        ),
        case(
            "Wi-Fi PSK not 64 hex digits",
            "nodes: [{ name: n1 }]\nnetwork:\n  interfaces:\n    wlan0:\n      wifi: { ssid: home, psk: abcd, country: GB } #<\n",
            "network.interfaces.wlan0.wifi.psk",
            "64 hex digits",
        ),
        case(
            "interface name too long",
            "nodes: [{ name: n1 }]\nnetwork:\n  interfaces:\n    enx00e04c680123456:\n      dhcp: true #<\n",
            "network.interfaces.enx00e04c680123456",
            "not a valid interface name",
        ),
        case(
            "unit both enabled and disabled",
            "nodes: [{ name: n1 }]\nservices:\n  enable: [nftables]\n  disable: [nftables.service] #<\n",
            "services.disable[0]",
            "both enabled and disabled",
        ),
        case(
            "user-data key the recipe owns",
            "nodes: [{ name: n1 }]\ncloud_init:\n  mode: seed\n  user_data:\n    hostname: other #<\n",
            "cloud_init.user_data.hostname",
            "set it with",
        ),
        case(
            "two nodes, one output name",
            "nodes: [{ name: n1 }, { name: n2 }]\noutput:\n  name: lab #<\n",
            "output.name",
            "put {node} in the output name",
        ),
        case(
            "epoch before 1980",
            "nodes: [{ name: n1 }]\nepoch: 0 #<\n",
            "epoch",
            "out of range",
        ),
        Case {
            setup: overlay,
            ..case(
                "mode rule on the boot partition",
                "nodes: [{ name: n1 }]\noverlays:\n  - source: ov\n    target: boot\n    rules:\n      - { glob: \"/etc/*\", mode: \"0600\" } #<\n",
                "overlays[0].rules[0]",
                "no modes or owners",
            )
        },
        Case {
            setup: overlay,
            ..case(
                "mode rule matching nothing",
                "nodes: [{ name: n1 }]\noverlays:\n  - source: ov\n    rules:\n      - { glob: \"/etc/ssh/*\", mode: \"0600\" } #<\n",
                "overlays[0].rules[0].glob",
                "matches nothing",
            )
        },
        Case {
            setup: overlay,
            ..case(
                "mode not octal",
                "nodes: [{ name: n1 }]\noverlays:\n  - source: ov\n    rules:\n      - { glob: \"/etc/*\", mode: \"rw-r--r--\" } #<\n",
                "overlays[0].rules[0].mode",
                "not an octal mode",
            )
        },
        Case {
            setup: overlay,
            ..case(
                "rule glob not an image path",
                "nodes: [{ name: n1 }]\noverlays:\n  - source: ov\n    rules:\n      - { glob: \"etc/*\", mode: \"0600\" } #<\n",
                "overlays[0].rules[0].glob",
                "a path in the image",
            )
        },
        case(
            "extends a missing file",
            "extends: base.yaml #<\nnodes: [{ name: n1 }]\n",
            "extends",
            "base.yaml: No such file",
        ),
        Case {
            setup: |d| write(d, "other.yaml", "extends: recipe.yaml #<\n"),
            file: "other.yaml",
            ..case(
                "extends cycle",
                "extends: other.yaml\nnodes: [{ name: n1 }]\n",
                "extends",
                "extends cycle",
            )
        },
    ]
}

#[test]
fn broken_recipes_name_file_line_and_field_and_write_nothing() {
    let cases = cases();
    assert!(cases.len() >= 25, "{} cases", cases.len());
    let mut failures = Vec::new();
    for c in &cases {
        let dir = crate::support::tmp();
        let d = dir.path();
        fs::write(d.join("base.img"), b"not opened by validate").unwrap();
        let text = if c.no_head {
            c.yaml.to_owned()
        } else {
            format!("{HEAD}{}", c.yaml)
        };
        fs::write(d.join("recipe.yaml"), &text).unwrap();
        (c.setup)(d);
        let marked_in = if c.file == "recipe.yaml" {
            text.clone()
        } else {
            fs::read_to_string(d.join(c.file)).unwrap()
        };
        let line = marked_in
            .lines()
            .position(|l| l.contains("#<"))
            .map_or(1, |i| i + 1);
        let before = snapshot(d);
        let out = validate(d, "recipe.yaml", &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let prefix = format!("{}:{line}:", c.file);
        let field = format!(": {}: ", c.field);
        let ok = out.status.code() == Some(1)
            && out.stdout.is_empty()
            && stderr.contains(&prefix)
            && stderr
                .lines()
                .any(|l| l.contains(&prefix) && l.contains(&field) && l.contains(c.message))
            && snapshot(d) == before;
        if !ok {
            failures.push(format!(
                "{}: want {prefix}..{field}..{:?}, got {:?}:\n{stderr}",
                c.name,
                c.message,
                out.status.code()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
