//! Who may do what on the status socket (issue 18): reading the status is open to every local
//! user who can reach the socket; control requests (permit-join, notify, and every other
//! request that changes something) need the peer credentials (`SO_PEERCRED`) of root, of the
//! daemon's own user, or of a member of the configured `[status] control_group`. The group is
//! resolved once at start from `/etc/group` and `/etc/passwd` text (no NSS); the decision
//! itself is a pure function of the peer's uid and gid.

/// The credentials of the process at the other end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// Its effective user id.
    pub uid: u32,
    /// Its effective group id.
    pub gid: u32,
}

/// A group whose members may send control requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlGroup {
    /// The group's name, for messages.
    pub name: String,
    /// Its id: a peer running with this gid is a member.
    pub gid: u32,
    /// The uids of the users it lists as members.
    pub member_uids: Vec<u32>,
}

/// The control privilege.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlAccess {
    /// The daemon's own uid (the socket file's owner).
    pub owner_uid: u32,
    /// The configured control group, if any.
    pub group: Option<ControlGroup>,
}

impl ControlAccess {
    /// Whether `peer` may send control requests.
    pub fn may_control(&self, peer: Peer) -> bool {
        peer.uid == 0
            || peer.uid == self.owner_uid
            || self
                .group
                .as_ref()
                .is_some_and(|g| peer.gid == g.gid || g.member_uids.contains(&peer.uid))
    }

    /// The refusal a peer without the privilege gets.
    pub fn refusal(&self) -> String {
        match &self.group {
            Some(group) => format!(
                "permission denied: control requests need root, the daemon's user or a member of the `{}` group; `status` is open to everyone",
                group.name
            ),
            None => "permission denied: control requests need root or the daemon's user (set [status] control_group to allow a group); `status` is open to everyone".to_owned(),
        }
    }
}

/// Resolves `name` from the text of `/etc/group` and `/etc/passwd`.
pub fn resolve_group(
    name: &str,
    group_file: &str,
    passwd_file: &str,
) -> Result<ControlGroup, String> {
    let line = group_file
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|fields| fields.first() == Some(&name))
        .ok_or_else(|| format!("control_group `{name}` is not in /etc/group"))?;
    let gid = line
        .get(2)
        .and_then(|gid| gid.trim().parse::<u32>().ok())
        .ok_or_else(|| format!("control_group `{name}`: unreadable group id in /etc/group"))?;
    let member_names: Vec<&str> = line
        .get(3)
        .map(|members| {
            members
                .split(',')
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let member_uids = passwd_file
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|fields| {
            fields
                .first()
                .is_some_and(|user| member_names.contains(user))
        })
        .filter_map(|fields| fields.get(2).and_then(|uid| uid.trim().parse::<u32>().ok()))
        .collect();
    Ok(ControlGroup {
        name: name.to_owned(),
        gid,
        member_uids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GROUP: &str = "root:x:0:\ndialout:x:20:pi\nzigbee-admin:x:990:alice,bob\n";
    const PASSWD: &str = "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\nbob:x:1001:1001::/:/bin/sh\neve:x:1002:1002::/:/bin/sh\n";

    #[test]
    fn root_the_owner_and_group_members_may_control_others_may_not() {
        let group = resolve_group("zigbee-admin", GROUP, PASSWD).unwrap();
        assert_eq!(group.gid, 990);
        assert_eq!(group.member_uids, vec![1000, 1001]);
        let access = ControlAccess {
            owner_uid: 61_000,
            group: Some(group),
        };
        let peer = |uid, gid| Peer { uid, gid };
        assert!(access.may_control(peer(0, 0)));
        assert!(access.may_control(peer(61_000, 61_000)));
        assert!(access.may_control(peer(1000, 1000)), "listed member");
        assert!(
            access.may_control(peer(1500, 990)),
            "running with the group"
        );
        assert!(!access.may_control(peer(1002, 1002)), "eve");
        let no_group = ControlAccess {
            owner_uid: 61_000,
            group: None,
        };
        assert!(!no_group.may_control(peer(1000, 1000)));
        assert!(no_group.refusal().contains("control_group"));
    }

    #[test]
    fn an_unknown_group_is_a_clear_error() {
        let err = resolve_group("nobody-here", GROUP, PASSWD).unwrap_err();
        assert!(err.contains("nobody-here"), "{err}");
        let err = resolve_group("bad", "bad:x:notanumber:\n", PASSWD).unwrap_err();
        assert!(err.contains("group id"), "{err}");
    }
}
