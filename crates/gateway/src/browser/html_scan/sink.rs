//! The tree `html5ever`'s tree builder builds for [`super::scan_html`]: elements with their
//! attributes, text, and a place for everything else (comments, doctype), no more. The tree
//! builder decides every move (where a node goes, what is reparented, what a misnested tag
//! does); this only carries them out, as the `TreeSink` contract asks.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use html5ever::interface::{ElementFlags, NodeOrText, QuirksMode, TreeSink};
use html5ever::tendril::StrTendril;
use html5ever::{Attribute, LocalName, Namespace, QualName, local_name, ns};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Document,
    Element,
    Text,
    /// A comment, a processing instruction, a template's contents: kept for the tree's shape.
    Other,
}

pub(super) struct Node {
    kind: Kind,
    /// The element's name; empty for other nodes.
    pub(super) name: QualName,
    pub(super) attrs: RefCell<Vec<Attribute>>,
    text: RefCell<String>,
    pub(super) children: RefCell<Vec<Rc<Node>>>,
    parent: Cell<Option<Weak<Node>>>,
    /// A `<template>`'s contents (a fragment of their own, as the standard has it).
    pub(super) template_contents: Option<Rc<Node>>,
    mathml_annotation_xml_integration_point: bool,
}

impl Node {
    fn new(kind: Kind, name: QualName) -> Rc<Node> {
        Rc::new(Node {
            kind,
            name,
            attrs: RefCell::new(Vec::new()),
            text: RefCell::new(String::new()),
            children: RefCell::new(Vec::new()),
            parent: Cell::new(None),
            template_contents: None,
            mathml_annotation_xml_integration_point: false,
        })
    }

    fn unnamed(kind: Kind) -> Rc<Node> {
        Node::new(
            kind,
            QualName::new(None, Namespace::from(""), LocalName::from("")),
        )
    }

    fn text_node(text: &str) -> Rc<Node> {
        let node = Node::unnamed(Kind::Text);
        node.text.borrow_mut().push_str(text);
        node
    }

    pub(super) fn is_element(&self) -> bool {
        self.kind == Kind::Element
    }

    /// The value of the attribute `name` (no namespace), decoded.
    pub(super) fn attr(&self, name: &str) -> Option<String> {
        self.attrs
            .borrow()
            .iter()
            .find(|a| a.name.ns.is_empty() && &*a.name.local == name)
            .map(|a| a.value.to_string())
    }

    /// The element's child text, joined: a script's or a style's text as the browser has it.
    pub(super) fn text(&self) -> String {
        self.children
            .borrow()
            .iter()
            .filter(|c| c.kind == Kind::Text)
            .map(|c| c.text.borrow().clone())
            .collect()
    }

    fn parent(&self) -> Option<Rc<Node>> {
        let weak = self.parent.take();
        let parent = weak.as_ref().and_then(Weak::upgrade);
        self.parent.set(weak);
        parent
    }

    fn detach(node: &Rc<Node>) {
        if let Some(parent) = node.parent() {
            parent
                .children
                .borrow_mut()
                .retain(|c| !Rc::ptr_eq(c, node));
        }
        node.parent.set(None);
    }

    /// Inserts `child` at `index` of `parent`'s children, merging text into a text node just
    /// before it.
    fn insert(parent: &Rc<Node>, index: usize, child: NodeOrText<Rc<Node>>) {
        match child {
            NodeOrText::AppendText(text) => {
                let children = parent.children.borrow();
                if let Some(previous) = index.checked_sub(1).and_then(|i| children.get(i))
                    && previous.kind == Kind::Text
                {
                    previous.text.borrow_mut().push_str(&text);
                    return;
                }
                drop(children);
                let node = Node::text_node(&text);
                node.parent.set(Some(Rc::downgrade(parent)));
                parent.children.borrow_mut().insert(index, node);
            }
            NodeOrText::AppendNode(node) => {
                Node::detach(&node);
                node.parent.set(Some(Rc::downgrade(parent)));
                let mut children = parent.children.borrow_mut();
                let index = index.min(children.len());
                children.insert(index, node);
            }
        }
    }
}

pub(super) struct Sink {
    document: Rc<Node>,
}

impl Default for Sink {
    fn default() -> Self {
        Sink {
            document: Node::unnamed(Kind::Document),
        }
    }
}

impl TreeSink for Sink {
    type Handle = Rc<Node>;
    type Output = Rc<Node>;
    type ElemName<'a> = &'a QualName;

    fn finish(self) -> Rc<Node> {
        self.document
    }

    /// The page is MSP's; its mistakes are read as a browser reads them, not reported.
    fn parse_error(&self, _msg: Cow<'static, str>) {}

    fn get_document(&self) -> Rc<Node> {
        self.document.clone()
    }

    fn elem_name<'a>(&'a self, target: &'a Rc<Node>) -> &'a QualName {
        &target.name
    }

    fn create_element(
        &self,
        name: QualName,
        attrs: Vec<Attribute>,
        flags: ElementFlags,
    ) -> Rc<Node> {
        let template =
            flags.template || (name.ns == ns!(html) && name.local == local_name!("template"));
        Rc::new(Node {
            kind: Kind::Element,
            name,
            attrs: RefCell::new(attrs),
            text: RefCell::new(String::new()),
            children: RefCell::new(Vec::new()),
            parent: Cell::new(None),
            template_contents: template.then(|| Node::unnamed(Kind::Other)),
            mathml_annotation_xml_integration_point: flags.mathml_annotation_xml_integration_point,
        })
    }

    fn create_comment(&self, _text: StrTendril) -> Rc<Node> {
        Node::unnamed(Kind::Other)
    }

    fn create_pi(&self, _target: StrTendril, _data: StrTendril) -> Rc<Node> {
        Node::unnamed(Kind::Other)
    }

    fn append(&self, parent: &Rc<Node>, child: NodeOrText<Rc<Node>>) {
        let end = parent.children.borrow().len();
        Node::insert(parent, end, child);
    }

    fn append_based_on_parent_node(
        &self,
        element: &Rc<Node>,
        prev_element: &Rc<Node>,
        child: NodeOrText<Rc<Node>>,
    ) {
        if element.parent().is_some() {
            self.append_before_sibling(element, child);
        } else {
            self.append(prev_element, child);
        }
    }

    fn append_doctype_to_document(&self, _: StrTendril, _: StrTendril, _: StrTendril) {}

    fn get_template_contents(&self, target: &Rc<Node>) -> Rc<Node> {
        // Only ever asked of a template, which has its contents; anything else is its own.
        target
            .template_contents
            .clone()
            .unwrap_or_else(|| target.clone())
    }

    fn same_node(&self, x: &Rc<Node>, y: &Rc<Node>) -> bool {
        Rc::ptr_eq(x, y)
    }

    fn set_quirks_mode(&self, _mode: QuirksMode) {}

    fn append_before_sibling(&self, sibling: &Rc<Node>, new_node: NodeOrText<Rc<Node>>) {
        let Some(parent) = sibling.parent() else {
            return;
        };
        // A node moved within the same parent: take it out first, so the index is right.
        if let NodeOrText::AppendNode(node) = &new_node {
            Node::detach(node);
        }
        let index = parent
            .children
            .borrow()
            .iter()
            .position(|c| Rc::ptr_eq(c, sibling))
            .unwrap_or(0);
        Node::insert(&parent, index, new_node);
    }

    fn add_attrs_if_missing(&self, target: &Rc<Node>, attrs: Vec<Attribute>) {
        let mut existing = target.attrs.borrow_mut();
        for attr in attrs {
            if !existing.iter().any(|a| a.name == attr.name) {
                existing.push(attr);
            }
        }
    }

    fn remove_from_parent(&self, target: &Rc<Node>) {
        Node::detach(target);
    }

    fn reparent_children(&self, node: &Rc<Node>, new_parent: &Rc<Node>) {
        let children = std::mem::take(&mut *node.children.borrow_mut());
        for child in children {
            child.parent.set(None);
            self.append(new_parent, NodeOrText::AppendNode(child));
        }
    }

    fn is_mathml_annotation_xml_integration_point(&self, handle: &Rc<Node>) -> bool {
        handle.mathml_annotation_xml_integration_point
    }
}
