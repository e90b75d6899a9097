//! Properties: sign-then-verify for every algorithm, single-byte tampering,
//! claims round trips, and the `aud` shapes.

use std::sync::{Arc, OnceLock};

use crate::support::{IDP, NOW, RAS};
use idjag_core::*;
use proptest::prelude::*;
use serde_json::json;

fn keys() -> &'static Vec<(SigningKey, IdJagValidator)> {
    static KEYS: OnceLock<Vec<(SigningKey, IdJagValidator)>> = OnceLock::new();
    KEYS.get_or_init(|| {
        Algorithm::ALL
            .into_iter()
            .map(|alg| {
                let key = SigningKey::generate(alg).unwrap().with_thumbprint_kid();
                let validator = IdJagValidator::new(
                    TrustedIssuers::new().with(
                        Issuer::new(IDP).unwrap(),
                        Arc::new(KeySet::new([key.verifying_key().unwrap()]).unwrap()),
                    ),
                    Audience::new(RAS).unwrap(),
                    AlgorithmSet::all(),
                    TestClock::at_unix(NOW).shared(),
                );
                (key, validator)
            })
            .collect()
    })
}

fn identifier() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._:/@-]{1,40}"
}

fn scope_set() -> impl Strategy<Value = ScopeSet> {
    proptest::collection::btree_set("[a-z][a-z0-9.:_-]{0,15}", 0..5)
        .prop_map(|scopes| scopes.into_iter().map(|s| Scope::new(s).unwrap()).collect())
}

fn resources() -> impl Strategy<Value = Option<Vec<Resource>>> {
    proptest::option::of(
        proptest::collection::vec("[a-z]{1,10}", 1..4).prop_map(|hosts| {
            hosts
                .into_iter()
                .map(|h| Resource::new(format!("https://{h}.example/mcp")).unwrap())
                .collect()
        }),
    )
}

prop_compose! {
    fn id_jag_claims()(
        sub in identifier(),
        client_id in identifier(),
        jti in identifier(),
        iat in (NOW - 60)..(NOW + 20),
        lifetime in 100i64..3000,
        scope in proptest::option::of(scope_set()),
        resource in resources(),
        tenant in proptest::option::of(identifier()),
        extra in proptest::option::of(any::<i64>()),
    ) -> IdJagClaims {
        let mut claims = IdJagClaims::new(
            Issuer::new(IDP).unwrap(),
            Subject::new(sub).unwrap(),
            Audience::new(RAS).unwrap(),
            ClientId::new(client_id).unwrap(),
            Jti::new(jti).unwrap(),
            NumericDate::from_unix(iat).unwrap(),
            NumericDate::from_unix(iat + lifetime).unwrap(),
        );
        claims.scope = scope;
        claims.resource = resource;
        claims.tenant = tenant;
        if let Some(value) = extra {
            claims.extra.insert("x-extra".into(), json!(value));
        }
        claims
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn sign_then_verify_round_trips_for_every_algorithm(claims in id_jag_claims(), which in 0usize..5) {
        let (key, validator) = &keys()[which];
        let token = key.sign_jwt(Some(wire::TYP_ID_JAG), &claims).unwrap();
        let verified = validator.validate(token.secret()).unwrap();
        prop_assert_eq!(verified.claims(), &claims);
        prop_assert_eq!(verified.alg(), key.alg());
    }

    #[test]
    fn any_single_changed_byte_is_rejected(claims in id_jag_claims(), which in 0usize..5, position in any::<prop::sample::Index>(), replacement in 0x21u8..0x7f) {
        let (key, validator) = &keys()[which];
        let token = key.sign_jwt(Some(wire::TYP_ID_JAG), &claims).unwrap().secret().to_owned();
        let mut bytes = token.into_bytes();
        let at = position.index(bytes.len());
        prop_assume!(bytes[at] != replacement);
        bytes[at] = replacement;
        let tampered = String::from_utf8(bytes).unwrap();
        prop_assert!(validator.validate(&tampered).is_err());
    }

    #[test]
    fn claims_serialise_and_parse_back_to_the_same_value(claims in id_jag_claims()) {
        let json = serde_json::to_vec(&claims).unwrap();
        prop_assert_eq!(IdJagClaims::from_json_slice(&json).unwrap(), claims);
    }

    #[test]
    fn aud_is_a_string_or_a_one_element_array_and_nothing_else(
        claims in id_jag_claims(),
        others in proptest::collection::vec("https://[a-z]{1,8}\\.example", 1..4),
        at in any::<prop::sample::Index>(),
    ) {
        let (key, validator) = &keys()[0];
        let sign = |aud: serde_json::Value| {
            let mut value = serde_json::to_value(&claims).unwrap();
            value["aud"] = aud;
            key.sign_jwt(Some(wire::TYP_ID_JAG), &value).unwrap()
        };
        prop_assert!(validator.validate(sign(json!(RAS)).secret()).is_ok());
        prop_assert!(validator.validate(sign(json!([RAS])).secret()).is_ok());
        let mut many: Vec<String> = others;
        let at = at.index(many.len() + 1);
        many.insert(at, RAS.to_owned());
        prop_assert_eq!(
            validator.validate(sign(json!(many)).secret()).unwrap_err(),
            ValidationError::Claim(ClaimError { claim: "aud", problem: ClaimProblem::Invalid })
        );
    }
}
