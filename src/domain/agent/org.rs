//! The org chart: agents under their managers, and the one rule of its shape (no cycles).

use serde::Serialize;
use utoipa::ToSchema;

use super::{AgentName, AgentStatus, Level};

/// An agent in the chain of managers above some agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainLink {
    pub id: String,
    pub name: String,
}

/// Whether making `agent` report to the first agent of `chain` would close a cycle, where
/// `chain` is that new manager followed by its managers, bottom up. The cycle, as names from
/// the agent back to itself (`a → b → a`), when it would.
pub fn cycle_through(agent: &ChainLink, chain: &[ChainLink]) -> Option<Vec<String>> {
    let at = chain.iter().position(|link| link.id == agent.id)?;
    let mut cycle = vec![agent.name.clone()];
    cycle.extend(chain[..at].iter().map(|l| l.name.clone()));
    cycle.push(agent.name.clone());
    Some(cycle)
}

/// One agent in the org chart, with the agents reporting to it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct OrgNode {
    pub id: String,
    #[schema(value_type = String)]
    pub name: AgentName,
    pub display_name: String,
    pub role: String,
    pub department: String,
    pub level: Level,
    pub status: AgentStatus,
    #[schema(required = true)]
    pub reports_to: Option<String>,
    /// The agents reporting to this one, by name.
    #[schema(no_recursion)]
    pub reports: Vec<OrgNode>,
}

/// `GET /api/org`: the org chart as a forest.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct OrgChart {
    /// Agents without a manager, by name, each with everyone below it.
    pub roots: Vec<OrgNode>,
}

/// The deepest tree the chart shows; agents further down start trees of their own (their
/// `reports_to` still names their manager). Real orgs are a few levels deep.
pub const MAX_DEPTH: usize = 128;

impl OrgChart {
    /// Builds the forest from every agent (childless nodes, in any order). An agent whose
    /// manager is not among `agents` is a root; so is one found on a cycle (which the write
    /// path refuses, but a chart must never hang or drop agents on bad data) and one deeper
    /// than [`MAX_DEPTH`].
    pub fn build(mut agents: Vec<OrgNode>) -> Self {
        use std::collections::{HashMap, HashSet};

        agents.sort_by(|a, b| a.name.cmp(&b.name));
        let ids: HashSet<String> = agents.iter().map(|a| a.id.clone()).collect();
        let mut children: HashMap<String, Vec<OrgNode>> = HashMap::new();
        let mut roots = Vec::new();
        for agent in agents {
            match agent.reports_to.clone() {
                Some(manager) if ids.contains(&manager) => {
                    children.entry(manager).or_default().push(agent)
                }
                _ => roots.push(agent),
            }
        }
        // Recursion here and when the chart is serialised goes as deep as the chart; the depth
        // cap keeps a pathological chain of agents from exhausting a thread's stack.
        fn attach(node: &mut OrgNode, children: &mut HashMap<String, Vec<OrgNode>>, depth: usize) {
            if depth >= MAX_DEPTH {
                return;
            }
            if let Some(mut reports) = children.remove(&node.id) {
                for report in &mut reports {
                    attach(report, children, depth + 1);
                }
                node.reports = reports;
            }
        }
        for root in &mut roots {
            attach(root, &mut children, 1);
        }
        // Whatever is left hangs off a cycle or below the depth cap: promote its first member
        // (by name) to a root, which breaks the cycle or starts a new tree, and repeat.
        loop {
            let first = children
                .iter()
                .flat_map(|(manager, group)| {
                    group.iter().enumerate().map(move |(i, n)| (manager, i, n))
                })
                .min_by(|a, b| a.2.name.cmp(&b.2.name))
                .map(|(manager, i, _)| (manager.clone(), i));
            let Some((manager, i)) = first else { break };
            let Some(group) = children.get_mut(&manager) else {
                break;
            };
            let mut root = group.remove(i);
            if group.is_empty() {
                children.remove(&manager);
            }
            attach(&mut root, &mut children, 1);
            roots.push(root);
        }
        roots.sort_by(|a, b| a.name.cmp(&b.name));
        OrgChart { roots }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(name: &str) -> ChainLink {
        ChainLink {
            id: format!("id-{name}"),
            name: name.into(),
        }
    }

    #[test]
    fn a_cycle_is_found_and_spelled_out() {
        let a = link("a");
        // a would report to c; c reports to b; b reports to a.
        let chain = [link("c"), link("b"), link("a")];
        assert_eq!(
            cycle_through(&a, &chain),
            Some(vec!["a".into(), "c".into(), "b".into(), "a".into()])
        );
        // Reporting to oneself.
        assert_eq!(
            cycle_through(&a, &[link("a")]),
            Some(vec!["a".into(), "a".into()])
        );
        // A chain that does not contain the agent.
        assert_eq!(cycle_through(&a, &[link("c"), link("b")]), None);
    }

    fn node(name: &str, manager: Option<&str>) -> OrgNode {
        OrgNode {
            id: format!("id-{name}"),
            name: AgentName::parse(name).unwrap(),
            display_name: name.into(),
            role: String::new(),
            department: String::new(),
            level: Level::Ic,
            status: AgentStatus::Idle,
            reports_to: manager.map(|m| format!("id-{m}")),
            reports: vec![],
        }
    }

    fn shape(nodes: &[OrgNode]) -> String {
        nodes
            .iter()
            .map(|n| {
                if n.reports.is_empty() {
                    n.name.to_string()
                } else {
                    format!("{}({})", n.name, shape(&n.reports))
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn the_org_chart_is_a_forest_sorted_by_name() {
        let chart = OrgChart::build(vec![
            node("eng", Some("ceo")),
            node("qa", Some("eng")),
            node("ceo", None),
            node("dev", Some("eng")),
            node("solo", None),
        ]);
        assert_eq!(shape(&chart.roots), "ceo(eng(dev qa)) solo");
    }

    #[test]
    fn agents_on_a_cycle_still_appear_in_the_chart() {
        let chart = OrgChart::build(vec![
            node("a", Some("b")),
            node("b", Some("a")),
            node("c", None),
        ]);
        let text = shape(&chart.roots);
        assert!(
            text.contains('a') && text.contains('b') && text.contains('c'),
            "{text}"
        );
    }

    #[test]
    fn a_very_deep_chain_is_cut_into_trees_no_deeper_than_the_cap() {
        let names: Vec<String> = (0..1000).map(|i| format!("a{i:04}")).collect();
        let nodes = names
            .iter()
            .enumerate()
            .map(|(i, n)| node(n, i.checked_sub(1).map(|m| names[m].as_str())))
            .collect();
        let chart = OrgChart::build(nodes);
        fn depth(n: &OrgNode) -> usize {
            1 + n.reports.iter().map(depth).max().unwrap_or(0)
        }
        fn count(n: &OrgNode) -> usize {
            1 + n.reports.iter().map(count).sum::<usize>()
        }
        assert!(chart.roots.iter().all(|r| depth(r) <= MAX_DEPTH));
        assert_eq!(
            chart.roots.iter().map(count).sum::<usize>(),
            1000,
            "nobody dropped"
        );
        assert_eq!(chart.roots[0].name.as_str(), "a0000");
    }
}
