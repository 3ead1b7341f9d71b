//! Access-policy expressions: CEL over `user` and `channel`.
//!
//! The operator compiles an `AccessPolicy`'s expression to validate it; the
//! server compiles the same text with the same function and evaluates it for
//! one user and one channel. So what the operator accepts is exactly what
//! the server can run.
//!
//! What an expression sees:
//! - `user`: the user's attributes (`user.nation`, `user.clearance`, …) and
//!   `user.guest` (true for guest accounts, whatever the attributes say);
//! - `channel`: `channel.name`, `channel.kind` and `channel.labels`.
//!
//! Ranked attributes (a Workspace's `spec.identity.attributes.ranked`, e.g.
//! clearance UNCLASSIFIED < RESTRICTED < CONFIDENTIAL < SECRET) compare by
//! rank: `user.clearance >= 'SECRET'` means "at least SECRET", and
//! `user.clearance >= channel.labels.clearance` compares two levels. A
//! comparison naming a level that does not exist is a compile error, so a
//! typo such as `'SECERT'` cannot silently deny (or admit) everyone. Any
//! other value can be ranked explicitly with `rank('clearance', value)`.
//!
//! Evaluation fails closed: a user without an attribute the expression needs
//! (use `has(user.mission)` to allow for that), an unknown level, or a result
//! that is not a boolean is an error, and the caller treats it as "no".

use std::{collections::BTreeMap, sync::Arc};

use cel::{
    common::{
        ast::{CallExpr, Expr, IdedExpr, LiteralValue},
        types::{CelInt, CelString},
    },
    parser::Parser,
    Context, ExecutionError, Value,
};

/// Ranked attributes: name → levels, lowest first.
pub type Ranks = BTreeMap<String, Vec<String>>;

/// The variables an expression may use.
const VARIABLES: [&str; 2] = ["user", "channel"];
const RELATIONS: [&str; 4] = ["_<_", "_<=_", "_>_", "_>=_"];
/// The function ranked comparisons are rewritten to.
const RANK: &str = "rank";

/// A compiled expression, ready to evaluate.
#[derive(Clone, Debug)]
pub struct Expression {
    source: String,
    ast: IdedExpr,
    ranks: Arc<Ranks>,
}

/// What an expression is evaluated against: one channel.
#[derive(Clone, Debug)]
pub struct ChannelFacts<'a> {
    pub name: &'a str,
    pub kind: &'a str,
    pub labels: &'a BTreeMap<String, String>,
}

impl Expression {
    /// Parses `source` and resolves ranked comparisons against `ranks`.
    /// The error is a message for the person who wrote the expression.
    pub fn compile(source: &str, ranks: &Ranks) -> Result<Expression, String> {
        if source.trim().is_empty() {
            return Err(
                "the expression is empty; write a condition such as user.nation == 'FR'".into(),
            );
        }
        let mut ast = Parser::default()
            .parse(source)
            .map_err(|e| format!("syntax error: {}", e.to_string().trim()))?;
        let mut problems = Vec::new();
        let mut bound = Vec::new();
        let mut next_id = u64::MAX / 2;
        rewrite(&mut ast, ranks, &mut bound, &mut problems, &mut next_id);
        problems.dedup();
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        Ok(Expression {
            source: source.to_string(),
            ast,
            ranks: Arc::new(ranks.clone()),
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether `user` (attributes, and whether a guest) may access `channel`.
    /// An error says why the expression could not decide; callers deny.
    pub fn evaluate(
        &self,
        attributes: &serde_json::Map<String, serde_json::Value>,
        guest: bool,
        channel: &ChannelFacts,
    ) -> Result<bool, String> {
        let mut user = attributes.clone();
        user.insert("guest".into(), serde_json::Value::Bool(guest));
        let channel = serde_json::json!({
            "name": channel.name,
            "kind": channel.kind,
            "labels": channel.labels,
        });
        let mut context = Context::default();
        let ranks = self.ranks.clone();
        context.add_function(
            RANK,
            move |name: Arc<String>, value: Arc<String>| -> Result<i64, ExecutionError> {
                rank_of(&ranks, &name, &value)
                    .map_err(|message| ExecutionError::function_error(RANK, message))
            },
        );
        let to_value = |json: serde_json::Value| {
            cel::to_value(json).map_err(|e| format!("cannot pass attributes to CEL: {e}"))
        };
        context.add_variable_from_value("user", to_value(serde_json::Value::Object(user))?);
        context.add_variable_from_value("channel", to_value(channel)?);
        match Value::resolve(&self.ast, &context) {
            Ok(Value::Bool(allowed)) => Ok(allowed),
            Ok(other) => Err(format!("the expression gave {other:?}, not true or false")),
            Err(ExecutionError::NoSuchKey(key)) => Err(format!(
                "the user or channel has no {key:?}; guard optional attributes with has(user.{key})"
            )),
            Err(e) => Err(format!("cannot evaluate: {e}")),
        }
    }
}

/// The rank of `value` among the levels of `attribute`.
pub fn rank_of(ranks: &Ranks, attribute: &str, value: &str) -> Result<i64, String> {
    let levels = ranks
        .get(attribute)
        .ok_or_else(|| format!("{attribute:?} is not a ranked attribute"))?;
    levels
        .iter()
        .position(|level| level == value)
        .map(|i| i as i64)
        .ok_or_else(|| unknown_level(attribute, value, levels))
}

fn unknown_level(attribute: &str, value: &str, levels: &[String]) -> String {
    format!(
        "{value:?} is not a level of {attribute} ({})",
        levels.join(" < ")
    )
}

/// The ranked attribute `expr` reads, if it is `user.<ranked>` or
/// `channel.labels.<ranked>`.
fn ranked_reference<'a>(expr: &'a IdedExpr, ranks: &Ranks) -> Option<&'a str> {
    let Expr::Select(select) = &expr.expr else {
        return None;
    };
    if select.test || !ranks.contains_key(&select.field) {
        return None;
    }
    let reads = match &select.operand.expr {
        Expr::Ident(name) => name == "user",
        Expr::Select(inner) => {
            inner.field == "labels"
                && matches!(&inner.operand.expr, Expr::Ident(n) if n == "channel")
        }
        _ => false,
    };
    reads.then_some(select.field.as_str())
}

fn string_literal(expr: &IdedExpr) -> Option<&str> {
    match &expr.expr {
        Expr::Literal(LiteralValue::String(s)) => Some(s.inner()),
        _ => None,
    }
}

/// Rewrites ranked comparisons into comparisons of ranks, and collects what
/// is wrong: unknown variables, unknown levels.
fn rewrite(
    expr: &mut IdedExpr,
    ranks: &Ranks,
    bound: &mut Vec<String>,
    problems: &mut Vec<String>,
    next_id: &mut u64,
) {
    match &mut expr.expr {
        Expr::Ident(name) => {
            if !VARIABLES.contains(&name.as_str()) && !bound.contains(name) {
                problems.push(format!(
                    "unknown name {name:?}: an expression sees only user and channel"
                ));
            }
        }
        Expr::Call(call) => {
            let attribute = (call.args.len() == 2)
                .then(|| {
                    ranked_reference(&call.args[0], ranks)
                        .or_else(|| ranked_reference(&call.args[1], ranks))
                })
                .flatten()
                .map(String::from);
            if let Some(attribute) = attribute {
                let levels = &ranks[&attribute];
                for arg in &call.args {
                    if let Some(level) = string_literal(arg) {
                        if !levels.iter().any(|l| l == level) {
                            problems.push(unknown_level(&attribute, level, levels));
                        }
                    }
                }
                if RELATIONS.contains(&call.func_name.as_str()) {
                    for arg in call.args.iter_mut() {
                        rewrite(arg, ranks, bound, problems, next_id);
                        *arg = ranked(&attribute, std::mem::take(arg), ranks, next_id);
                    }
                    return;
                }
            }
            if let Some(target) = call.target.as_mut() {
                rewrite(target, ranks, bound, problems, next_id);
            }
            for arg in call.args.iter_mut() {
                rewrite(arg, ranks, bound, problems, next_id);
            }
        }
        Expr::Comprehension(comprehension) => {
            rewrite(
                &mut comprehension.iter_range,
                ranks,
                bound,
                problems,
                next_id,
            );
            let depth = bound.len();
            bound.push(comprehension.iter_var.clone());
            bound.extend(comprehension.iter_var2.clone());
            bound.push(comprehension.accu_var.clone());
            for part in [
                &mut comprehension.accu_init,
                &mut comprehension.loop_cond,
                &mut comprehension.loop_step,
                &mut comprehension.result,
            ] {
                rewrite(part, ranks, bound, problems, next_id);
            }
            bound.truncate(depth);
        }
        Expr::List(list) => {
            for element in list.elements.iter_mut() {
                rewrite(element, ranks, bound, problems, next_id);
            }
        }
        Expr::Map(map) => {
            for entry in map.entries.iter_mut() {
                if let cel::common::ast::EntryExpr::MapEntry(entry) = &mut entry.expr {
                    rewrite(&mut entry.key, ranks, bound, problems, next_id);
                    rewrite(&mut entry.value, ranks, bound, problems, next_id);
                }
            }
        }
        Expr::Select(select) => rewrite(&mut select.operand, ranks, bound, problems, next_id),
        Expr::Struct(_) => problems.push("message literals are not supported here".into()),
        Expr::Literal(_) | Expr::Unspecified => {}
    }
}

/// `operand` as a rank of `attribute`: a literal level becomes its rank now,
/// anything else is ranked when evaluated.
fn ranked(attribute: &str, operand: IdedExpr, ranks: &Ranks, next_id: &mut u64) -> IdedExpr {
    let mut id = || {
        *next_id += 1;
        *next_id
    };
    if let Some(level) = string_literal(&operand) {
        if let Ok(rank) = rank_of(ranks, attribute, level) {
            return IdedExpr {
                id: id(),
                expr: Expr::Literal(LiteralValue::Int(CelInt::from(rank))),
            };
        }
    }
    IdedExpr {
        id: id(),
        expr: Expr::Call(CallExpr {
            func_name: RANK.into(),
            target: None,
            args: vec![
                IdedExpr {
                    id: id(),
                    expr: Expr::Literal(LiteralValue::String(CelString::from(attribute))),
                },
                operand,
            ],
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LEVELS: [&str; 5] = [
        "UNCLASSIFIED",
        "RESTRICTED",
        "CONFIDENTIAL",
        "SECRET",
        "TOP SECRET",
    ];

    fn ranks() -> Ranks {
        [(
            "clearance".to_string(),
            LEVELS.iter().map(|l| l.to_string()).collect(),
        )]
        .into()
    }

    fn user(pairs: &[(&str, &str)]) -> serde_json::Map<String, serde_json::Value> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
            .collect()
    }

    fn check(
        source: &str,
        attributes: &[(&str, &str)],
        labels: &[(&str, &str)],
    ) -> Result<bool, String> {
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Expression::compile(source, &ranks())?.evaluate(
            &user(attributes),
            false,
            &ChannelFacts {
                name: "ops",
                kind: "private",
                labels: &labels,
            },
        )
    }

    #[test]
    fn ranked_attributes_compare_by_rank_not_by_spelling() {
        // Alphabetically "CONFIDENTIAL" < "SECRET" < "TOP SECRET" < "UNCLASSIFIED":
        // a string comparison would let UNCLASSIFIED in.
        let rule = "user.clearance >= 'SECRET'";
        assert_eq!(
            check(rule, &[("clearance", "UNCLASSIFIED")], &[]),
            Ok(false)
        );
        assert_eq!(
            check(rule, &[("clearance", "CONFIDENTIAL")], &[]),
            Ok(false)
        );
        assert_eq!(check(rule, &[("clearance", "SECRET")], &[]), Ok(true));
        assert_eq!(check(rule, &[("clearance", "TOP SECRET")], &[]), Ok(true));
        // The literal may come first.
        assert_eq!(
            check(
                "'SECRET' <= user.clearance",
                &[("clearance", "TOP SECRET")],
                &[]
            ),
            Ok(true)
        );
    }

    #[test]
    fn a_level_can_come_from_the_channels_labels() {
        let rule = "user.clearance >= channel.labels.clearance && user.nation in ['FR', 'DE']";
        let secret_channel = [("clearance", "SECRET")];
        assert_eq!(
            check(
                rule,
                &[("clearance", "SECRET"), ("nation", "FR")],
                &secret_channel
            ),
            Ok(true)
        );
        assert_eq!(
            check(
                rule,
                &[("clearance", "RESTRICTED"), ("nation", "FR")],
                &secret_channel
            ),
            Ok(false)
        );
        assert_eq!(
            check(
                rule,
                &[("clearance", "SECRET"), ("nation", "US")],
                &secret_channel
            ),
            Ok(false)
        );
        // A label that is not a level cannot decide: an error, which callers deny.
        let error = check(
            rule,
            &[("clearance", "SECRET"), ("nation", "FR")],
            &[("clearance", "HUSH")],
        )
        .unwrap_err();
        assert!(
            error.contains("\"HUSH\" is not a level of clearance"),
            "{error}"
        );
    }

    #[test]
    fn mistakes_are_compile_errors_that_say_what_to_fix() {
        let error = Expression::compile("user.clearance >= 'SECERT'", &ranks()).unwrap_err();
        assert!(
            error.contains("\"SECERT\" is not a level of clearance (UNCLASSIFIED < RESTRICTED"),
            "{error}"
        );
        let error = Expression::compile("user.clearance == 'SECERT'", &ranks()).unwrap_err();
        assert!(error.contains("SECERT"), "{error}");
        let error = Expression::compile("usr.nation == 'FR'", &ranks()).unwrap_err();
        assert!(error.contains("unknown name \"usr\""), "{error}");
        let error = Expression::compile("user.nation == ", &ranks()).unwrap_err();
        assert!(error.starts_with("syntax error"), "{error}");
        assert!(Expression::compile("  ", &ranks()).is_err());
        // Comprehension variables are not unknown names.
        Expression::compile("['FR', 'DE'].exists(n, n == user.nation)", &ranks()).unwrap();
    }

    #[test]
    fn evaluation_fails_closed() {
        let error = check("user.mission == 'ALPHA'", &[], &[]).unwrap_err();
        assert!(error.contains("has(user.mission)"), "{error}");
        assert_eq!(
            check("has(user.mission) && user.mission == 'ALPHA'", &[], &[]),
            Ok(false)
        );
        assert!(
            check("user.nation", &[("nation", "FR")], &[]).is_err(),
            "not a boolean"
        );
        let error = check(
            "user.clearance >= 'SECRET'",
            &[("clearance", "secret")],
            &[],
        )
        .unwrap_err();
        assert!(error.contains("not a level"), "{error}");
    }

    #[test]
    fn guest_comes_from_the_account_not_the_attributes() {
        let expression = Expression::compile("!user.guest", &ranks()).unwrap();
        let mut attributes = user(&[]);
        attributes.insert("guest".into(), false.into());
        let empty = BTreeMap::new();
        let channel = ChannelFacts {
            name: "ops",
            kind: "public",
            labels: &empty,
        };
        assert_eq!(expression.evaluate(&attributes, true, &channel), Ok(false));
        assert_eq!(expression.evaluate(&attributes, false, &channel), Ok(true));
    }

    proptest! {
        // For any two levels, every ranked comparison agrees with comparing
        // their positions, whichever side the literal is on.
        #[test]
        fn ranked_comparisons_agree_with_level_order(user_level in 0usize..5, wanted in 0usize..5, op in 0usize..6) {
            let ops = [">=", ">", "<=", "<", "==", "!="];
            let expected = match ops[op] {
                ">=" => user_level >= wanted,
                ">" => user_level > wanted,
                "<=" => user_level <= wanted,
                "<" => user_level < wanted,
                "==" => user_level == wanted,
                _ => user_level != wanted,
            };
            let attributes = [("clearance", LEVELS[user_level])];
            let forward = format!("user.clearance {} '{}'", ops[op], LEVELS[wanted]);
            prop_assert_eq!(check(&forward, &attributes, &[]), Ok(expected));
            let flipped = match ops[op] { ">=" => "<=", ">" => "<", "<=" => ">=", "<" => ">", other => other };
            let backward = format!("'{}' {} user.clearance", LEVELS[wanted], flipped);
            prop_assert_eq!(check(&backward, &attributes, &[]), Ok(expected));
            let labelled = format!("user.clearance {} channel.labels.clearance", ops[op]);
            prop_assert_eq!(check(&labelled, &attributes, &[("clearance", LEVELS[wanted])]), Ok(expected));
        }

        // Comparison is transitive and total over levels: "at least L" admits
        // exactly the levels from L up.
        #[test]
        fn at_least_admits_exactly_the_levels_above(wanted in 0usize..5) {
            let rule = format!("user.clearance >= '{}'", LEVELS[wanted]);
            let admitted: Vec<usize> = (0..5)
                .filter(|&l| check(&rule, &[("clearance", LEVELS[l])], &[]) == Ok(true))
                .collect();
            prop_assert_eq!(admitted, (wanted..5).collect::<Vec<_>>());
        }
    }
}
