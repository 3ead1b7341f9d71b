//! The rooms of one SFU node: who is in each call, what they publish, and
//! the seats held for joins still setting up. Pure bookkeeping behind the
//! node's one lock: no network, so the rules (a call's cap, one connection
//! per user, no new calls while draining, a room gone with its last
//! participant) are unit tested on their own.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
};

use super::Refusal;

/// Someone in a room.
pub(super) trait Member {
    fn id(&self) -> u64;
    fn user(&self) -> &str;
}

/// A track someone in a room publishes.
pub(super) trait Owned: Clone {
    fn owner(&self) -> u64;
}

/// One call on this node.
struct Room<P, T> {
    participants: HashMap<u64, Arc<P>>,
    tracks: Vec<T>,
    /// Seats held for joins still setting up their connection.
    joining: usize,
    /// `participants.len()`, kept by [`Rooms::recount`] for the forwarding
    /// loops, which read it per packet without taking the rooms' lock.
    size: Arc<AtomicUsize>,
}

impl<P, T> Default for Room<P, T> {
    fn default() -> Self {
        Room {
            participants: HashMap::new(),
            tracks: Vec::new(),
            joining: 0,
            size: Arc::default(),
        }
    }
}

impl<P, T> Room<P, T> {
    fn is_empty(&self) -> bool {
        self.participants.is_empty() && self.joining == 0
    }
}

/// Every room of the node, by call id.
pub(super) struct Rooms<P, T> {
    rooms: HashMap<String, Room<P, T>>,
    max_participants: usize,
    draining: bool,
}

/// What admitting a participant changed.
pub(super) struct Admitted<P, T> {
    /// Older connections of the same user, to be closed (the newer wins).
    pub stale: Vec<u64>,
    /// Everyone else in the room.
    pub others: Vec<Arc<P>>,
    /// What the others publish, for the newcomer to receive.
    pub tracks: Vec<T>,
}

/// Who left, and what that ended.
pub(super) struct Left<P, T> {
    pub gone: Arc<P>,
    pub others: Vec<Arc<P>>,
    /// The tracks they published.
    pub ended: Vec<T>,
}

/// A room's figures for `/status`.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Counts {
    pub rooms: usize,
    pub participants: usize,
    /// Streams forwarded: each track times the participants receiving it.
    pub load: usize,
}

impl<P: Member, T: Owned> Rooms<P, T> {
    pub fn new(max_participants: usize) -> Self {
        Rooms {
            rooms: HashMap::new(),
            max_participants: max_participants.max(1),
            draining: false,
        }
    }

    /// Holds a seat in `call` for a join about to set up its connection:
    /// refused while draining (for a call not already here) or when the
    /// call is full, counting seats already held.
    pub fn seat(&mut self, call: &str) -> Result<(), Refusal> {
        if !self.rooms.contains_key(call) && self.draining {
            return Err(Refusal::new(
                "draining",
                "this media server is draining and starts no new calls",
            ));
        }
        let room = self.rooms.entry(call.to_string()).or_default();
        if room.participants.len() + room.joining >= self.max_participants {
            let message = format!("the call is full ({} participants)", self.max_participants);
            if room.is_empty() {
                self.rooms.remove(call);
            }
            return Err(Refusal::new("full", message));
        }
        room.joining += 1;
        Ok(())
    }

    /// Gives back a seat whose join did not complete.
    pub fn release(&mut self, call: &str) {
        if let Some(room) = self.rooms.get_mut(call) {
            room.joining = room.joining.saturating_sub(1);
            if room.is_empty() {
                self.rooms.remove(call);
            }
        }
    }

    /// Turns a held seat into `participant`.
    pub fn admit(&mut self, call: &str, participant: Arc<P>) -> Admitted<P, T> {
        let room = self.rooms.entry(call.to_string()).or_default();
        room.joining = room.joining.saturating_sub(1);
        let id = participant.id();
        let stale: Vec<u64> = room
            .participants
            .values()
            .filter(|p| p.user() == participant.user())
            .map(|p| p.id())
            .collect();
        let others = room
            .participants
            .values()
            .filter(|p| !stale.contains(&p.id()))
            .cloned()
            .collect();
        room.participants.insert(id, participant);
        let tracks = room
            .tracks
            .iter()
            .filter(|t| t.owner() != id)
            .cloned()
            .collect();
        Admitted {
            stale,
            others,
            tracks,
        }
    }

    /// Adds a track `owner` publishes: the participants to forward it to and
    /// the room's size counter, or `None` if the owner is no longer here.
    pub fn publish(&mut self, call: &str, track: T) -> Option<(Vec<Arc<P>>, Arc<AtomicUsize>)> {
        let room = self.rooms.get_mut(call)?;
        let owner = track.owner();
        if !room.participants.contains_key(&owner) {
            return None;
        }
        room.tracks.push(track);
        let others = room
            .participants
            .values()
            .filter(|p| p.id() != owner)
            .cloned()
            .collect();
        Some((others, room.size.clone()))
    }

    /// Takes participant `id` out of `call`, with its tracks; the room goes
    /// with its last participant.
    pub fn leave(&mut self, call: &str, id: u64) -> Option<Left<P, T>> {
        let room = self.rooms.get_mut(call)?;
        let gone = room.participants.remove(&id)?;
        let (ended, kept) = std::mem::take(&mut room.tracks)
            .into_iter()
            .partition(|t| t.owner() == id);
        room.tracks = kept;
        let others = room.participants.values().cloned().collect();
        if room.is_empty() {
            self.rooms.remove(call);
        }
        Some(Left {
            gone,
            others,
            ended,
        })
    }

    pub fn member(&self, call: &str, id: u64) -> Option<Arc<P>> {
        self.rooms.get(call)?.participants.get(&id).cloned()
    }

    /// The users in `call`, each once, sorted.
    pub fn users(&self, call: &str) -> Vec<String> {
        let mut users: Vec<String> = self
            .rooms
            .get(call)
            .map(|room| {
                room.participants
                    .values()
                    .map(|p| p.user().to_string())
                    .collect()
            })
            .unwrap_or_default();
        users.sort();
        users.dedup();
        users
    }

    /// No new calls from now on; those in progress go on.
    pub fn drain(&mut self) {
        self.draining = true;
    }

    pub fn draining(&self) -> bool {
        self.draining
    }

    pub fn counts(&self) -> Counts {
        Counts {
            rooms: self.rooms.len(),
            participants: self.rooms.values().map(|r| r.participants.len()).sum(),
            load: self
                .rooms
                .values()
                .map(|r| r.tracks.len() * r.participants.len().saturating_sub(1))
                .sum(),
        }
    }

    /// Brings each room's size counter up to date after a change.
    pub fn recount(&self) {
        for room in self.rooms.values() {
            room.size.store(room.participants.len(), Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Person {
        id: u64,
        user: &'static str,
    }

    impl Member for Person {
        fn id(&self) -> u64 {
            self.id
        }
        fn user(&self) -> &str {
            self.user
        }
    }

    #[derive(Clone, Debug, PartialEq)]
    struct Track(u64);

    impl Owned for Track {
        fn owner(&self) -> u64 {
            self.0
        }
    }

    fn join(rooms: &mut Rooms<Person, Track>, call: &str, id: u64, user: &'static str) {
        rooms.seat(call).unwrap();
        rooms.admit(call, Arc::new(Person { id, user }));
    }

    #[test]
    fn a_full_call_refuses_counting_seats_still_setting_up() {
        let mut rooms = Rooms::<Person, Track>::new(2);
        join(&mut rooms, "c", 1, "ana");
        rooms.seat("c").unwrap();
        let refusal = rooms.seat("c").unwrap_err();
        assert_eq!(refusal.code, "full");
        assert!(refusal.message.contains("2 participants"), "{refusal:?}");
        // The held seat is given back: there is room again.
        rooms.release("c");
        rooms.seat("c").unwrap();
    }

    #[test]
    fn a_refused_first_join_leaves_no_room_behind() {
        let mut rooms = Rooms::<Person, Track>::new(1);
        rooms.seat("c").unwrap();
        rooms.release("c");
        assert_eq!(rooms.counts(), Counts::default());
    }

    #[test]
    fn one_connection_per_user_the_newer_wins() {
        let mut rooms = Rooms::<Person, Track>::new(10);
        join(&mut rooms, "c", 1, "ana");
        join(&mut rooms, "c", 2, "bo");
        rooms.seat("c").unwrap();
        let admitted = rooms.admit("c", Arc::new(Person { id: 3, user: "ana" }));
        assert_eq!(admitted.stale, [1]);
        let others: Vec<u64> = admitted.others.iter().map(|p| p.id).collect();
        assert_eq!(others, [2], "the stale connection is not one of the others");
        assert!(rooms.leave("c", 1).is_some());
        assert_eq!(rooms.users("c"), ["ana", "bo"]);
    }

    #[test]
    fn a_newcomer_receives_what_the_others_publish_and_leaving_ends_it() {
        let mut rooms = Rooms::<Person, Track>::new(10);
        join(&mut rooms, "c", 1, "ana");
        let (to, size) = rooms.publish("c", Track(1)).unwrap();
        assert!(to.is_empty());
        join(&mut rooms, "c", 2, "bo");
        rooms.recount();
        assert_eq!(size.load(Ordering::Relaxed), 2);
        assert_eq!(rooms.counts().load, 1, "one track, one receiver");
        rooms.seat("c").unwrap();
        let admitted = rooms.admit("c", Arc::new(Person { id: 3, user: "cy" }));
        assert_eq!(admitted.tracks, [Track(1)]);
        let left = rooms.leave("c", 1).unwrap();
        assert_eq!(left.gone.id, 1);
        assert_eq!(left.ended, [Track(1)]);
        assert_eq!(left.others.len(), 2);
        assert_eq!(rooms.counts().load, 0);
        // Someone no longer here publishes nothing.
        assert!(rooms.publish("c", Track(1)).is_none());
    }

    #[test]
    fn the_room_goes_with_its_last_participant() {
        let mut rooms = Rooms::<Person, Track>::new(10);
        join(&mut rooms, "c", 1, "ana");
        join(&mut rooms, "d", 2, "bo");
        assert_eq!(rooms.counts().rooms, 2);
        rooms.leave("c", 1).unwrap();
        assert!(rooms.leave("c", 1).is_none(), "twice is nothing");
        assert_eq!(
            rooms.counts(),
            Counts {
                rooms: 1,
                participants: 1,
                load: 0
            }
        );
    }

    #[test]
    fn draining_refuses_new_calls_but_not_calls_in_progress() {
        let mut rooms = Rooms::<Person, Track>::new(10);
        join(&mut rooms, "c", 1, "ana");
        rooms.drain();
        assert!(rooms.draining());
        assert_eq!(rooms.seat("new").unwrap_err().code, "draining");
        join(&mut rooms, "c", 2, "bo");
        assert_eq!(rooms.users("c"), ["ana", "bo"]);
    }
}
