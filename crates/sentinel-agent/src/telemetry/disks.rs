//! Disk usage of the real filesystems in `/proc/self/mounts`, measured with `statvfs(3)`.

use std::collections::HashSet;
use std::path::Path;

use sentinel_protocol::telemetry::DiskUsage;

/// Filesystem types that hold no disk space of the host's own: kernel interfaces, memory,
/// container layers, read-only images, automounters, and network filesystems (which
/// `statvfs` could block on when their server is gone).
const NOT_REAL: &[&str] = &[
    "9p",
    "afs",
    "aufs",
    "autofs",
    "binfmt_misc",
    "bpf",
    "ceph",
    "cgroup",
    "cgroup2",
    "cifs",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "efivarfs",
    "fuse",
    "fusectl",
    "glusterfs",
    "hugetlbfs",
    "mqueue",
    "nfs",
    "nfs4",
    "nfsd",
    "nsfs",
    "overlay",
    "proc",
    "pstore",
    "ramfs",
    "rootfs",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "smb3",
    "smbfs",
    "squashfs",
    "sysfs",
    "tmpfs",
    "tracefs",
];

/// One line of `/proc/self/mounts` worth measuring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Mount {
    pub(super) device: String,
    pub(super) mount_point: String,
    pub(super) filesystem: String,
}

/// The real filesystems in the text of `/proc/self/mounts`, each device once (the first
/// place it is mounted: later ones are bind mounts or subvolumes of the same space).
pub(super) fn parse_mounts(text: &str) -> Vec<Mount> {
    let mut seen = HashSet::new();
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_ascii_whitespace();
            let (device, mount_point, filesystem) =
                (fields.next()?, fields.next()?, fields.next()?);
            let real = !NOT_REAL.contains(&filesystem) && !filesystem.starts_with("fuse.");
            (real && seen.insert(device)).then(|| Mount {
                device: unescape(device),
                mount_point: unescape(mount_point),
                filesystem: filesystem.to_owned(),
            })
        })
        .collect()
}

/// Undoes the kernel's octal escapes of space, tab, newline and backslash (`\040`, …).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        let octal = (byte == b'\\')
            .then(|| bytes.get(index + 1..index + 4))
            .flatten()
            .filter(|digits| digits.iter().all(|d| (b'0'..=b'7').contains(d)))
            .and_then(|digits| std::str::from_utf8(digits).ok())
            .and_then(|digits| u8::from_str_radix(digits, 8).ok());
        match octal {
            Some(escaped) => {
                out.push(escaped);
                index += 4;
            }
            None => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Measures `mount` with `statvfs(3)`.
pub(super) fn measure(mount: Mount) -> Result<DiskUsage, String> {
    let stats = nix::sys::statvfs::statvfs(Path::new(&mount.mount_point))
        .map_err(|errno| format!("statvfs {}: {errno}", mount.mount_point))?;
    let block = stats.fragment_size() as u64;
    let bytes = |blocks: u64| blocks.saturating_mul(block);
    Ok(DiskUsage {
        total_bytes: bytes(stats.blocks() as u64),
        used_bytes: bytes((stats.blocks() as u64).saturating_sub(stats.blocks_free() as u64)),
        available_bytes: bytes(stats.blocks_available() as u64),
        mount: mount.mount_point,
        filesystem: mount.filesystem,
        device: mount.device,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_filesystems_once_each() {
        let text = concat!(
            "sysfs /sys sysfs rw,nosuid 0 0\n",
            "proc /proc proc rw 0 0\n",
            "/dev/nvme0n1p2 / ext4 rw,relatime 0 0\n",
            "tmpfs /run tmpfs rw 0 0\n",
            "/dev/nvme0n1p1 /boot/efi vfat rw 0 0\n",
            "/dev/loop3 /snap/core22/1380 squashfs ro 0 0\n",
            "overlay /var/lib/docker/overlay2/x/merged overlay rw 0 0\n",
            "/dev/nvme0n1p2 /var/lib/docker ext4 rw 0 0\n",
            "rpool/home /home zfs rw 0 0\n",
            "lxcfs /var/lib/lxcfs fuse.lxcfs rw 0 0\n",
            "server:/export /mnt/nfs nfs4 rw 0 0\n",
            "/dev/sdb1 /media/USB\\040Stick vfat rw 0 0\n",
            "short line\n",
            "\n",
        );
        let mounts: Vec<_> = parse_mounts(text)
            .into_iter()
            .map(|m| (m.mount_point, m.filesystem))
            .collect();
        let expected = [
            ("/", "ext4"),
            ("/boot/efi", "vfat"),
            ("/home", "zfs"),
            ("/media/USB Stick", "vfat"),
        ];
        let expected: Vec<_> = expected
            .iter()
            .map(|(m, f)| (m.to_string(), f.to_string()))
            .collect();
        assert_eq!(mounts, expected);
    }

    #[test]
    fn octal_escapes() {
        assert_eq!(unescape(r"a\040b\011c\012d\134e"), "a b\tc\nd\\e");
        assert_eq!(unescape(r"trailing\04"), r"trailing\04");
        assert_eq!(unescape(r"\9999\777"), r"\9999\777");
        assert_eq!(unescape("\\"), "\\");
        assert_eq!(unescape("é\\040"), "é ");
    }

    #[test]
    fn measures_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let mount = Mount {
            device: "/dev/test".to_owned(),
            mount_point: dir.path().display().to_string(),
            filesystem: "ext4".to_owned(),
        };
        let usage = measure(mount).unwrap();
        assert!(usage.total_bytes > 0);
        assert!(usage.used_bytes <= usage.total_bytes);
        assert!(usage.available_bytes <= usage.total_bytes);
    }

    #[test]
    fn missing_mount_point_is_an_error() {
        let mount = Mount {
            device: "/dev/test".to_owned(),
            mount_point: "/nonexistent/sentinel/mount".to_owned(),
            filesystem: "ext4".to_owned(),
        };
        assert!(
            measure(mount)
                .unwrap_err()
                .contains("/nonexistent/sentinel/mount")
        );
    }
}
