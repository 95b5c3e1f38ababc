//! Logged-in sessions, counted from the binary login records of `/var/run/utmp`.

/// The size of glibc's `struct utmp` on x86_64 and aarch64 (and other 64-bit targets).
const RECORD_BYTES: usize = 384;
/// Where `ut_user`, the login name, starts in a record, after `ut_type` (an `i16` padded
/// to 4 bytes), `ut_pid`, `ut_line[32]` and `ut_id[4]`.
const USER_OFFSET: usize = 44;
/// `ut_type` of a user's login session.
const USER_PROCESS: i16 = 7;

/// What a utmp file says about logins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Logins {
    /// Records of a user's login session with a login name.
    pub(super) sessions: u32,
    /// Bytes at the end too few to be a whole record.
    pub(super) trailing_bytes: usize,
}

/// Counts the login sessions in the bytes of a utmp file: records of type `USER_PROCESS`
/// whose login name is not empty. Integers are in the host's byte order.
pub(super) fn count_logins(utmp: &[u8]) -> Logins {
    let records = utmp.chunks_exact(RECORD_BYTES);
    let trailing_bytes = records.remainder().len();
    let sessions = records
        .filter(|record| {
            let kind = i16::from_ne_bytes([record[0], record[1]]);
            kind == USER_PROCESS && record[USER_OFFSET] != 0
        })
        .count();
    Logins {
        sessions: u32::try_from(sessions).unwrap_or(u32::MAX),
        trailing_bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A utmp record of `kind` for login name `user`.
    fn record(kind: i16, user: &str) -> Vec<u8> {
        let mut record = vec![0u8; RECORD_BYTES];
        record[..2].copy_from_slice(&kind.to_ne_bytes());
        record[4..8].copy_from_slice(&1234i32.to_ne_bytes());
        record[8..13].copy_from_slice(b"pts/0");
        record[USER_OFFSET..USER_OFFSET + user.len()].copy_from_slice(user.as_bytes());
        record
    }

    #[test]
    fn counts_user_processes_with_names() {
        let utmp = [
            record(2, "reboot"), // BOOT_TIME
            record(USER_PROCESS, "alice"),
            record(6, "LOGIN"), // LOGIN_PROCESS
            record(USER_PROCESS, "bob"),
            record(USER_PROCESS, ""), // no login name
            record(8, "carol"),       // DEAD_PROCESS
            record(USER_PROCESS, "alice"),
        ]
        .concat();
        assert_eq!(
            count_logins(&utmp),
            Logins {
                sessions: 3,
                trailing_bytes: 0
            }
        );
    }

    #[test]
    fn truncated_records_are_reported_not_read() {
        let mut utmp = record(USER_PROCESS, "alice");
        utmp.extend_from_slice(&record(USER_PROCESS, "bob")[..100]);
        assert_eq!(
            count_logins(&utmp),
            Logins {
                sessions: 1,
                trailing_bytes: 100
            }
        );
        assert_eq!(
            count_logins(&[]),
            Logins {
                sessions: 0,
                trailing_bytes: 0
            }
        );
    }
}
