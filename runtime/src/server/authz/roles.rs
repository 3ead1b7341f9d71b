//! Who may do what to a channel: pure decisions, no I/O.
//!
//! A channel's existence is itself private: whoever may not [`Access::read`]
//! a channel gets `404` for anything about it.

/// A user's role in the workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    SystemAdmin,
    Member,
    Guest,
    /// An agent: posts and is messaged, never signs in.
    Bot,
}

impl Role {
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "system_admin" => Some(Role::SystemAdmin),
            "member" => Some(Role::Member),
            "guest" => Some(Role::Guest),
            "bot" => Some(Role::Bot),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::SystemAdmin => "system_admin",
            Role::Member => "member",
            Role::Guest => "guest",
            Role::Bot => "bot",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    Public,
    Private,
    Direct,
    Group,
}

impl ChannelKind {
    pub fn parse(text: &str) -> Option<ChannelKind> {
        match text {
            "public" => Some(ChannelKind::Public),
            "private" => Some(ChannelKind::Private),
            "direct" => Some(ChannelKind::Direct),
            "group" => Some(ChannelKind::Group),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Public => "public",
            ChannelKind::Private => "private",
            ChannelKind::Direct => "direct",
            ChannelKind::Group => "group",
        }
    }
}

/// The caller's relation to a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    None,
    Member,
    ChannelAdmin,
}

/// What a caller may do with one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    /// See the channel and read its posts (and files, and search them).
    pub read: bool,
    /// Post, reply, react.
    pub post: bool,
    /// Join it without being added.
    pub join: bool,
    /// Add and remove members, archive it.
    pub manage: bool,
    /// Pin and unpin anyone's post (an author may always pin their own
    /// where they may post): pins are the channel's, so in a named channel
    /// its admins decide; in a conversation, any of its members.
    pub pin: bool,
}

/// The one place channel access is decided.
pub fn channel_access(
    role: Role,
    kind: ChannelKind,
    membership: Membership,
    archived: bool,
) -> Access {
    let member = membership != Membership::None;
    // Anyone but a guest may read a public channel without joining it; private,
    // direct and group channels are for their members only, admins included:
    // a system admin does not read other people's direct messages.
    let read = member || (kind == ChannelKind::Public && role != Role::Guest);
    let post = member && !archived;
    let join = kind == ChannelKind::Public && role != Role::Guest && !member && !archived;
    let manage = match kind {
        ChannelKind::Public | ChannelKind::Private => {
            membership == Membership::ChannelAdmin || (role == Role::SystemAdmin && read)
        }
        // Direct and group conversations have no admins.
        ChannelKind::Direct | ChannelKind::Group => false,
    };
    let pin = post
        && match kind {
            ChannelKind::Public | ChannelKind::Private => manage,
            ChannelKind::Direct | ChannelKind::Group => true,
        };
    Access {
        read,
        post,
        join,
        manage,
        pin,
    }
}

#[cfg(test)]
mod tests {
    use super::{
        ChannelKind::*,
        Membership::{ChannelAdmin as Owner, Member as In, None as Out},
        Role::{Guest, Member as User, SystemAdmin as Admin},
        *,
    };

    #[test]
    fn the_authorisation_matrix() {
        // (role, kind, membership) -> (read, post, join, manage, pin)
        let cases = [
            (User, Public, Out, (true, false, true, false, false)),
            (User, Public, In, (true, true, false, false, false)),
            (User, Public, Owner, (true, true, false, true, true)),
            (User, Private, Out, (false, false, false, false, false)),
            (User, Private, In, (true, true, false, false, false)),
            (User, Direct, Out, (false, false, false, false, false)),
            (User, Direct, In, (true, true, false, false, true)),
            (Guest, Public, Out, (false, false, false, false, false)),
            (Guest, Public, In, (true, true, false, false, false)),
            (Guest, Private, Out, (false, false, false, false, false)),
            (Guest, Private, In, (true, true, false, false, false)),
            (Guest, Direct, Out, (false, false, false, false, false)),
            (Admin, Public, Out, (true, false, true, true, false)),
            (Admin, Private, Out, (false, false, false, false, false)),
            (Admin, Private, In, (true, true, false, true, true)),
            (Admin, Direct, Out, (false, false, false, false, false)),
            (Admin, Direct, In, (true, true, false, false, true)),
            (Admin, Group, In, (true, true, false, false, true)),
        ];
        for (role, kind, membership, (read, post, join, manage, pin)) in cases {
            let got = channel_access(role, kind, membership, false);
            assert_eq!(
                got,
                Access {
                    read,
                    post,
                    join,
                    manage,
                    pin
                },
                "{role:?} {kind:?} {membership:?}"
            );
        }
    }

    #[test]
    fn an_archived_channel_is_read_only() {
        for role in [User, Guest, Admin] {
            let access = channel_access(role, Public, In, true);
            assert!(access.read && !access.post && !access.join, "{role:?}");
        }
    }
}
