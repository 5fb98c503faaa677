//! `Model::adopt`: replacing the model with a complete newer one (a fresh
//! initial dump, an `events2 --now` dump after lost events) in one step.
//!
//! A dump carries every object's state but no history: the helper records
//! (`call`/`response` lines seen on the stream) of objects that still exist
//! are carried over, so a rebuild does not forget that `fence-peer` ran.

use std::collections::BTreeMap;

use super::{Change, Helpers, Model, ObjectRef, Resource};

impl Model {
    /// Replaces every object with `fresh`'s and returns what that changed,
    /// one change per resource: `Created` (only in `fresh`), `Destroyed`
    /// (only here), `Updated` (any object below it differs). `fresh` should
    /// be complete (its `exists -` applied); the model is then complete too.
    pub fn adopt(&mut self, fresh: Model) -> Vec<Change> {
        let Model {
            resources: mut incoming,
            initial_dump_done,
            last_event_at,
        } = fresh;
        let mut changes = Vec::new();
        for (name, resource) in incoming.iter_mut() {
            match self.resources.get(name) {
                None => changes.push(Change::Created {
                    object: ObjectRef::Resource {
                        resource: name.clone(),
                    },
                }),
                Some(old) => {
                    carry_helpers(old, resource);
                    if old != resource {
                        changes.push(Change::Updated {
                            object: ObjectRef::Resource {
                                resource: name.clone(),
                            },
                        });
                    }
                }
            }
        }
        for name in self.resources.keys() {
            if !incoming.contains_key(name) {
                changes.push(Change::Destroyed {
                    object: ObjectRef::Resource {
                        resource: name.clone(),
                    },
                });
            }
        }
        self.resources = incoming;
        self.initial_dump_done |= initial_dump_done;
        if last_event_at.is_some() && last_event_at > self.last_event_at {
            self.last_event_at = last_event_at;
        }
        changes
    }
}

/// Keeps the records of helpers the dump does not mention.
fn merge(old: &Helpers, new: &mut Helpers) {
    for (helper, record) in old {
        new.entry(helper.clone()).or_insert_with(|| record.clone());
    }
}

fn carry_helpers(old: &Resource, new: &mut Resource) {
    merge(&old.helpers, &mut new.helpers);
    carry_by_key(&old.devices, &mut new.devices, |o, n| {
        merge(&o.helpers, &mut n.helpers)
    });
    carry_by_key(&old.connections, &mut new.connections, |o, n| {
        merge(&o.helpers, &mut n.helpers);
        carry_by_key(&o.peer_devices, &mut n.peer_devices, |o, n| {
            merge(&o.helpers, &mut n.helpers)
        });
    });
}

fn carry_by_key<K: Ord, V>(
    old: &BTreeMap<K, V>,
    new: &mut BTreeMap<K, V>,
    mut carry: impl FnMut(&V, &mut V),
) {
    for (key, value) in new.iter_mut() {
        if let Some(before) = old.get(key) {
            carry(before, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events2::{parse_line, Role};

    fn model(text: &str) -> Model {
        let mut model = Model::new();
        for line in text.lines() {
            model.apply(&parse_line(line).unwrap());
        }
        model
    }

    const R0: &str = "exists resource name:r0 role:Secondary suspended:no\n\
        exists device name:r0 volume:0 minor:1000 disk:UpToDate\n\
        exists connection name:r0 peer-node-id:1 conn-name:bravo connection:Connected role:Primary\n\
        exists peer-device name:r0 peer-node-id:1 conn-name:bravo volume:0 replication:Established peer-disk:UpToDate\n";
    const R1: &str = "exists resource name:r1 role:Secondary\n";

    #[test]
    fn same_state_changes_nothing() {
        let mut live = model(&format!("{R0}{R1}exists -\n"));
        let before = live.clone();
        let changes = live.adopt(model(&format!("{R0}{R1}exists -\n")));
        assert_eq!(changes, vec![]);
        assert_eq!(live, before);
    }

    #[test]
    fn created_updated_and_destroyed_resources_are_named() {
        let mut live = model(&format!("{R0}{R1}exists -\n"));
        let fresh = model(&format!(
            "{R0}change resource name:r0 role:Primary\nexists resource name:r2 role:Secondary\nexists -\n"
        ));
        let changes = live.adopt(fresh);
        let object = |name: &str| ObjectRef::Resource {
            resource: name.to_owned(),
        };
        assert_eq!(
            changes,
            vec![
                Change::Updated {
                    object: object("r0")
                },
                Change::Created {
                    object: object("r2")
                },
                Change::Destroyed {
                    object: object("r1")
                },
            ]
        );
        assert_eq!(live.resource("r0").unwrap().role, Some(Role::Primary));
        assert!(live.resource("r1").is_none());
        assert!(live.initial_dump_done());
    }

    #[test]
    fn helper_records_of_surviving_objects_are_kept() {
        let mut live = model(&format!(
            "{R0}exists -\ncall helper name:r0 peer-node-id:1 conn-name:bravo helper:fence-peer\n\
             response helper name:r0 peer-node-id:1 conn-name:bravo helper:fence-peer status:1024\n\
             call helper name:r0 volume:0 minor:1000 helper:before-resync-target\n"
        ));
        let changes = live.adopt(model(&format!("{R0}exists -\n")));
        assert_eq!(changes, vec![], "only the history differed");
        let r0 = live.resource("r0").unwrap();
        let fence = &r0.connections["bravo"].helpers["fence-peer"];
        assert_eq!(fence.calls, 1);
        assert_eq!(fence.last_response.as_ref().map(|r| r.exit_code), Some(4));
        assert_eq!(r0.devices[&0].helpers["before-resync-target"].calls, 1);
    }

    #[test]
    fn an_empty_complete_dump_removes_everything() {
        let mut live = model(&format!("{R0}exists -\n"));
        let changes = live.adopt(model("exists -\n"));
        assert_eq!(changes.len(), 1);
        assert!(live.resources().is_empty());
        assert!(live.initial_dump_done());
    }

    #[test]
    fn adopting_into_an_empty_model_completes_it() {
        let mut live = Model::new();
        let changes = live.adopt(model(&format!("{R0}{R1}exists -\n")));
        assert_eq!(changes.len(), 2);
        assert!(live.initial_dump_done());
        assert_eq!(live, model(&format!("{R0}{R1}exists -\n")));
    }
}
