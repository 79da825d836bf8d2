//! Sets of field paths (upstream `fieldpath.Set`), kept as a trie: the elements that are members at this
//! level, and the subsets below each element. A path can be a member and have members below it.

use std::collections::{BTreeMap, BTreeSet};

use crate::path::{FieldPath, PathElement};

/// A set of field paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    /// Elements whose path (prefix + element) is in the set.
    pub(crate) members: BTreeSet<PathElement>,
    /// Non-empty subsets of paths that continue below an element.
    pub(crate) children: BTreeMap<PathElement, FieldSet>,
}

impl FieldSet {
    /// The empty set.
    pub fn new() -> Self {
        FieldSet::default()
    }

    /// A set of the given paths.
    pub fn from_paths<I: IntoIterator<Item = FieldPath>>(paths: I) -> Self {
        let mut s = FieldSet::new();
        for p in paths {
            s.insert(&p);
        }
        s
    }

    /// Adds a path; the empty path is ignored (nobody owns "the whole object").
    pub fn insert(&mut self, path: &[PathElement]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    /// Whether the path is a member.
    pub fn has(&self, path: &[PathElement]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self.children.get(first).is_some_and(|c| c.has(rest)),
        }
    }

    /// Whether the set has no member at any depth.
    pub fn is_empty(&self) -> bool {
        // Children are never stored empty, so a child means a member below it.
        self.members.is_empty() && self.children.is_empty()
    }

    /// The number of member paths.
    pub fn len(&self) -> usize {
        self.members.len() + self.children.values().map(FieldSet::len).sum::<usize>()
    }

    /// The paths below `pe`, without the prefix (upstream `WithPrefix`).
    pub fn with_prefix(&self, pe: &PathElement) -> FieldSet {
        self.children.get(pe).cloned().unwrap_or_default()
    }

    /// Paths in either set.
    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.members.extend(other.members.iter().cloned());
        for (pe, child) in &other.children {
            let merged = match out.children.get(pe) {
                Some(mine) => mine.union(child),
                None => child.clone(),
            };
            out.children.insert(pe.clone(), merged);
        }
        out
    }

    /// Paths in both sets.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.intersection(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (pe, child) in &self.children {
            if let Some(theirs) = other.children.get(pe) {
                let i = child.intersection(theirs);
                if !i.is_empty() {
                    children.insert(pe.clone(), i);
                }
            }
        }
        FieldSet { members, children }
    }

    /// Paths in `self` but not in `other`; a removed member keeps the paths below it.
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.difference(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (pe, child) in &self.children {
            let d = match other.children.get(pe) {
                Some(theirs) => child.difference(theirs),
                None => child.clone(),
            };
            if !d.is_empty() {
                children.insert(pe.clone(), d);
            }
        }
        FieldSet { members, children }
    }

    /// Like `difference`, but a member of `other` also removes every path below it (upstream's reset-field filter).
    pub fn recursive_difference(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.difference(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (pe, child) in &self.children {
            if other.members.contains(pe) {
                continue;
            }
            let d = match other.children.get(pe) {
                Some(theirs) => child.recursive_difference(theirs),
                None => child.clone(),
            };
            if !d.is_empty() {
                children.insert(pe.clone(), d);
            }
        }
        FieldSet { members, children }
    }

    /// `self = self.union(&other)`, reusing both sets' nodes.
    pub(crate) fn union_with(&mut self, other: FieldSet) {
        if self.is_empty() {
            *self = other;
            return;
        }
        self.members.extend(other.members);
        for (pe, child) in other.children {
            match self.children.get_mut(&pe) {
                Some(mine) => mine.union_with(child),
                None => {
                    self.children.insert(pe, child);
                }
            }
        }
    }

    /// `self = self.difference(other)`, in place: only the paths of `other` are visited.
    /// Returns whether any path was removed.
    pub(crate) fn remove_all(&mut self, other: &FieldSet) -> bool {
        let mut removed = self.remove_members(other);
        for (pe, theirs) in &other.children {
            if let Some(mine) = self.children.get_mut(pe) {
                removed |= mine.remove_all(theirs);
                if mine.is_empty() {
                    self.children.remove(pe);
                }
            }
        }
        removed
    }

    /// `self = self.recursive_difference(other)`, in place.
    pub(crate) fn remove_recursively(&mut self, other: &FieldSet) {
        self.remove_members(other);
        for pe in &other.members {
            self.children.remove(pe);
        }
        for (pe, theirs) in &other.children {
            if let Some(mine) = self.children.get_mut(pe) {
                mine.remove_recursively(theirs);
                if mine.is_empty() {
                    self.children.remove(pe);
                }
            }
        }
    }

    fn remove_members(&mut self, other: &FieldSet) -> bool {
        let before = self.members.len();
        if other.members.len() < self.members.len() {
            for pe in &other.members {
                self.members.remove(pe);
            }
        } else {
            self.members.retain(|pe| !other.members.contains(pe));
        }
        self.members.len() != before
    }

    /// Every member path, in upstream's iteration order: this level's members first, then each child's paths.
    pub fn paths(&self) -> Vec<FieldPath> {
        let mut out = Vec::new();
        self.collect(&mut Vec::new(), &mut out);
        out
    }

    fn collect(&self, prefix: &mut FieldPath, out: &mut Vec<FieldPath>) {
        for m in &self.members {
            let mut p = prefix.clone();
            p.push(m.clone());
            out.push(p);
        }
        for (pe, child) in &self.children {
            prefix.push(pe.clone());
            child.collect(prefix, out);
            prefix.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::field_path;

    fn set(paths: &[&[&str]]) -> FieldSet {
        FieldSet::from_paths(paths.iter().map(|p| field_path(p)))
    }

    #[test]
    fn difference_keeps_children_of_removed_members() {
        let a = set(&[&["metadata"], &["metadata", "labels", "app"], &["spec", "replicas"]]);
        let strip = set(&[&["metadata"], &["spec", "replicas"]]);
        assert_eq!(a.difference(&strip), set(&[&["metadata", "labels", "app"]]));
        assert_eq!(a.recursive_difference(&strip), FieldSet::new());
    }

    #[test]
    fn union_intersection_and_membership() {
        let a = set(&[&["a", "b"], &["c"]]);
        let b = set(&[&["a", "b"], &["a", "d"]]);
        assert_eq!(a.union(&b).len(), 3);
        assert_eq!(a.intersection(&b), set(&[&["a", "b"]]));
        assert!(a.has(&field_path(&["a", "b"])));
        assert!(!a.has(&field_path(&["a"])));
        assert!(a.difference(&a).is_empty());
    }

    #[test]
    fn paths_iterate_members_before_children() {
        let s = set(&[&["a", "x"], &["b"], &["a"]]);
        let printed: Vec<String> = s.paths().iter().map(|p| crate::path::path_string(p)).collect();
        assert_eq!(printed, vec![".a", ".b", ".a.x"]);
    }
}
