//! Property graphs (SQL/PGQ) in the catalog: each is stored as its `CREATE PROPERTY
//! GRAPH` text under the catalog key `#graph:<name>` and parsed again at load. A graph
//! names existing collections as vertex and edge tables; it holds no data of its own.

use tissdb_dialect::graph::PropertyGraph;

use super::{Catalog, catalog_key};
use crate::doc::{Object, Value};
use crate::error::{Error, Result, SqlState};
use crate::storage::Op;

/// Catalog key prefix of graph entries.
pub(super) const GRAPH_PREFIX: &str = "#graph:";

const DUPLICATE_OBJECT: SqlState = SqlState("42710");

/// Parses a stored graph definition.
pub(super) fn decode(name: &str, doc: &Object) -> Result<PropertyGraph> {
    let Some(Value::String(text)) = doc.get("definition") else {
        return Err(Error::Corruption(format!(
            "graph entry {name:?} lacks its definition"
        )));
    };
    match tissdb_dialect::parse(text) {
        Ok(mut statements) => match statements.pop() {
            Some(tissdb_dialect::TissStatement::CreatePropertyGraph { graph, .. }) => Ok(graph),
            _ => Err(Error::Corruption(format!(
                "graph entry {name:?} is not a CREATE PROPERTY GRAPH"
            ))),
        },
        Err(e) => Err(Error::Corruption(format!(
            "graph entry {name:?} does not parse: {e}"
        ))),
    }
}

impl Catalog {
    /// Stores a property graph (42710 if the name is taken; 42P01 for a table it names
    /// that does not exist; 42704 for an edge whose ends are not vertex tables).
    pub fn create_graph(&self, graph: PropertyGraph, text: &str) -> Result<()> {
        let _ddl = self.ddl.lock();
        if self.state.read().graphs.contains_key(&graph.name) {
            return Err(Error::conflict(
                DUPLICATE_OBJECT,
                format!("property graph \"{}\" already exists", graph.name),
            ));
        }
        let tables = graph
            .vertices
            .iter()
            .map(|v| &v.table)
            .chain(graph.edges.iter().map(|e| &e.table));
        for t in tables {
            self.get(t).map_err(|_| {
                Error::not_found(
                    SqlState::UNDEFINED_TABLE,
                    format!("relation \"{t}\" does not exist"),
                )
            })?;
        }
        let mut labels = std::collections::HashSet::new();
        for label in graph
            .vertices
            .iter()
            .map(|v| &v.label)
            .chain(graph.edges.iter().map(|e| &e.label))
        {
            if !labels.insert(label) {
                return Err(Error::conflict(
                    DUPLICATE_OBJECT,
                    format!(
                        "label \"{label}\" is used twice in property graph \"{}\"",
                        graph.name
                    ),
                ));
            }
        }
        for e in &graph.edges {
            for end in [&e.source_table, &e.destination_table] {
                if !graph.vertices.iter().any(|v| v.table == *end) {
                    return Err(Error::not_found(
                        SqlState::UNDEFINED_OBJECT,
                        format!(
                            "edge table \"{}\" references \"{end}\", which is not a vertex table of the graph",
                            e.table
                        ),
                    ));
                }
            }
        }
        let mut doc = Object::default();
        doc.insert("definition".into(), Value::String(text.to_string()));
        self.storage.write(vec![Op::Put {
            key: catalog_key(&format!("{GRAPH_PREFIX}{}", graph.name)),
            doc,
        }])?;
        self.state_mut().graphs.insert(graph.name.clone(), graph);
        Ok(())
    }

    /// Drops a property graph (42704 if there is none, unless `if_exists`).
    pub fn drop_graph(&self, name: &str, if_exists: bool) -> Result<()> {
        let _ddl = self.ddl.lock();
        if !self.state.read().graphs.contains_key(name) {
            if if_exists {
                return Ok(());
            }
            return Err(undefined_graph(name));
        }
        self.storage.write(vec![Op::Delete {
            key: catalog_key(&format!("{GRAPH_PREFIX}{name}")),
        }])?;
        self.state_mut().graphs.remove(name);
        Ok(())
    }

    /// The property graph `name` (42704 if there is none).
    pub fn graph(&self, name: &str) -> Result<PropertyGraph> {
        self.state
            .read()
            .graphs
            .get(name)
            .cloned()
            .ok_or_else(|| undefined_graph(name))
    }

    /// The names of every property graph.
    pub fn graph_names(&self) -> Vec<String> {
        self.state.read().graphs.keys().cloned().collect()
    }
}

fn undefined_graph(name: &str) -> Error {
    Error::not_found(
        SqlState::UNDEFINED_OBJECT,
        format!("property graph \"{name}\" does not exist"),
    )
}
