//! Property tests: the approval and refresh-family state machines against simple models,
//! over random sequences of operations and time steps.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use idjag_core::TestClock;
use idjag_store::*;
use proptest::prelude::*;
use serde_json::json;

const TTL: i64 = 30;

#[derive(Debug, Clone)]
enum ApprovalOp {
    Gate(u8),
    Decide(usize, bool),
    Advance(u64),
}

fn approval_op() -> impl Strategy<Value = ApprovalOp> {
    prop_oneof![
        4 => (0u8..3).prop_map(ApprovalOp::Gate),
        3 => (0usize..8, any::<bool>()).prop_map(|(i, a)| ApprovalOp::Decide(i, a)),
        1 => (0u64..45).prop_map(ApprovalOp::Advance),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Rec {
    status: ApprovalStatus,
    expires: i64,
}

#[derive(Default)]
struct Model {
    records: HashMap<String, Rec>,
    index: HashMap<u8, String>,
}

impl Model {
    fn live(&self, id: &str, now: i64) -> Option<Rec> {
        self.records.get(id).copied().filter(|r| r.expires > now)
    }
}

fn call_key(call: u8) -> [u8; 32] {
    [call; 32]
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn approvals_follow_their_state_machine(ops in proptest::collection::vec(approval_op(), 1..40)) {
        rt().block_on(async {
            let clock = TestClock::at_unix(1_700_000_000);
            let store = Arc::new(MemoryStore::new(clock.shared()));
            let approvals = Approvals::new(store, Duration::from_secs(TTL as u64), 1_000, clock.shared());
            let mut model = Model::default();
            let mut ids: Vec<String> = Vec::new();
            for op in ops {
                let now = clock_secs(&clock);
                match op {
                    ApprovalOp::Advance(s) => clock.advance(Duration::from_secs(s)),
                    ApprovalOp::Gate(call) => {
                        let got = approvals.gate(call_key(call), &json!({"call": call})).await.unwrap();
                        let indexed = model.index.get(&call).cloned();
                        let current = indexed.as_ref().and_then(|id| model.live(id, now).map(|r| (id.clone(), r)));
                        match current {
                            Some((id, r)) if r.status == ApprovalStatus::Pending => {
                                prop_assert_eq!(got, Gate::Held { id, new: false });
                            }
                            Some((id, r)) if r.status == ApprovalStatus::Rejected => {
                                prop_assert_eq!(got, Gate::Rejected { id });
                            }
                            Some((id, r)) if r.status == ApprovalStatus::Approved => {
                                prop_assert_eq!(&got, &Gate::Proceed { id: id.clone() });
                                model.records.get_mut(&id).unwrap().status = ApprovalStatus::Consumed;
                                model.index.remove(&call);
                            }
                            _ => {
                                let Gate::Held { id, new: true } = got else {
                                    return Err(TestCaseError::fail(format!("expected a new hold, got {got:?}")));
                                };
                                prop_assert!(!model.records.contains_key(&id));
                                model.records.insert(id.clone(), Rec { status: ApprovalStatus::Pending, expires: now + TTL });
                                model.index.insert(call, id.clone());
                                ids.push(id);
                            }
                        }
                    }
                    ApprovalOp::Decide(i, approve) => {
                        let Some(id) = ids.get(i).cloned() else { continue };
                        let got = approvals.decide(&id, approve).await;
                        match model.live(&id, now) {
                            None => prop_assert_eq!(got, Err(DecideError::NotFound)),
                            Some(r) if r.status != ApprovalStatus::Pending => {
                                prop_assert_eq!(got, Err(DecideError::AlreadyDecided));
                            }
                            Some(_) => {
                                let record = got.unwrap();
                                let status = if approve { ApprovalStatus::Approved } else { ApprovalStatus::Rejected };
                                prop_assert_eq!(record.status, status);
                                prop_assert_eq!(record.expires, now + TTL);
                                let r = model.records.get_mut(&id).unwrap();
                                r.status = status;
                                r.expires = now + TTL;
                            }
                        }
                    }
                }
                // The listing agrees with the model.
                let now = clock_secs(&clock);
                let mut listed: Vec<(String, ApprovalStatus)> = approvals
                    .list().await.unwrap().into_iter().map(|r| (r.id, r.status)).collect();
                listed.sort_by(|a, b| a.0.cmp(&b.0));
                let mut expected: Vec<(String, ApprovalStatus)> = model.records.iter()
                    .filter(|(_, r)| r.expires > now)
                    .map(|(id, r)| (id.clone(), r.status))
                    .collect();
                expected.sort_by(|a, b| a.0.cmp(&b.0));
                prop_assert_eq!(listed, expected);
            }
            Ok(())
        })?;
    }

    #[test]
    fn refresh_families_rotate_once_and_any_reuse_revokes(picks in proptest::collection::vec(0usize..6, 1..25)) {
        rt().block_on(async {
            let clock = TestClock::at_unix(1_700_000_000);
            let store = Arc::new(MemoryStore::new(clock.shared()));
            let families = RefreshFamilies::new(store);
            let family = families.start("t0", &json!({"sub": "alice"}), 1_700_003_600).await.unwrap();
            let mut issued = vec!["t0".to_owned()];
            let mut current = 0usize;
            let mut revoked = false;
            let mut generation = 0u64;
            for (step, pick) in picks.into_iter().enumerate() {
                // Present one of the issued tokens, or one never issued.
                let presented = issued.get(pick).cloned().unwrap_or_else(|| format!("never-{step}"));
                let next = format!("t{}", issued.len());
                let got = families.rotate::<serde_json::Value>(&presented, &next).await.unwrap();
                if pick >= issued.len() {
                    prop_assert_eq!(got, Rotation::Unknown);
                } else if revoked {
                    prop_assert_eq!(got, Rotation::Revoked { family: family.clone() });
                } else if pick == current {
                    generation += 1;
                    prop_assert_eq!(got, Rotation::Rotated { family: family.clone(), grant: json!({"sub": "alice"}), generation });
                    issued.push(next);
                    current = issued.len() - 1;
                } else {
                    prop_assert_eq!(got, Rotation::Reused { family: family.clone() });
                    revoked = true;
                }
            }
            Ok(())
        })?;
    }
}

fn clock_secs(clock: &TestClock) -> i64 {
    crate::support::clock_ms(clock).div_euclid(1000)
}
