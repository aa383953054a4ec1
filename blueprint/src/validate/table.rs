//! Validation of DynamoDB tables.

use super::*;

impl Validator<'_> {
    pub(super) fn capacity(
        &mut self,
        path: &str,
        mode: BillingMode,
        read: Option<u64>,
        write: Option<u64>,
    ) {
        match mode {
            BillingMode::Provisioned => {
                for (field, value) in [("readCapacity", read), ("writeCapacity", write)] {
                    match value {
                        None => self.error(
                            &format!("{path}.{field}"),
                            format!("`billingMode: provisioned` needs `{field}`"),
                            "set capacity units, or use `billingMode: payPerRequest`",
                        ),
                        Some(0) => self.error(
                            &format!("{path}.{field}"),
                            format!("`{field}` must be at least 1"),
                            "capacity units start at 1",
                        ),
                        Some(_) => {}
                    }
                }
            }
            BillingMode::PayPerRequest => {
                for (field, value) in [("readCapacity", read), ("writeCapacity", write)] {
                    if value.is_some() {
                        self.error(
                            &format!("{path}.{field}"),
                            format!("`{field}` applies only to `billingMode: provisioned`"),
                            "remove it, or set `billingMode: provisioned`",
                        );
                    }
                }
            }
        }
    }

    pub(super) fn table(&mut self, t: &Table, path: &str) {
        if let Some(name) = &t.table_name {
            let p = format!("{path}.tableName");
            self.physical_name(
                &p,
                name,
                255,
                |c| c.is_ascii_alphanumeric() || "_-.".contains(c),
                "table name",
            );
            if name.len() < 3 {
                self.error(
                    &p,
                    "table names have at least 3 characters",
                    "choose a longer name",
                );
            }
        }
        self.capacity(path, t.billing_mode, t.read_capacity, t.write_capacity);
        let mut attribute_types: BTreeMap<&str, (AttributeType, String)> = BTreeMap::new();
        let key_of = |key: &KeyAttribute, at: String| (key.name.clone(), key.kind, at);
        let mut keys = vec![key_of(&t.hash_key, format!("{path}.hashKey"))];
        if let Some(r) = &t.range_key {
            keys.push(key_of(r, format!("{path}.rangeKey")));
        }
        if t.global_secondary_indexes.len() > 20 {
            self.error(
                &format!("{path}.globalSecondaryIndexes"),
                "more than 20 global secondary indexes",
                "AWS allows 20 per table",
            );
        }
        let mut index_names = BTreeSet::new();
        for (i, gsi) in t.global_secondary_indexes.iter().enumerate() {
            let p = format!("{path}.globalSecondaryIndexes[{i}]");
            if !index_names.insert(gsi.name.as_str()) {
                self.error(
                    &format!("{p}.name"),
                    format!("duplicate index name `{}`", gsi.name),
                    "index names are unique per table",
                );
            }
            keys.push(key_of(&gsi.hash_key, format!("{p}.hashKey")));
            if let Some(r) = &gsi.range_key {
                keys.push(key_of(r, format!("{p}.rangeKey")));
            }
            match (gsi.projection, gsi.non_key_attributes.is_empty()) {
                (Projection::Include, true) => self.error(
                    &format!("{p}.nonKeyAttributes"),
                    "`projection: include` needs `nonKeyAttributes`",
                    "list the attributes to project",
                ),
                (Projection::All | Projection::KeysOnly, false) => self.error(
                    &format!("{p}.nonKeyAttributes"),
                    "`nonKeyAttributes` needs `projection: include`",
                    "set `projection: include`",
                ),
                _ => {}
            }
            self.capacity(&p, t.billing_mode, gsi.read_capacity, gsi.write_capacity);
        }
        for (name, _, at) in &keys {
            self.attribute_name(name, &format!("{at}.name"));
        }
        self.distinct_keys(&t.hash_key, t.range_key.as_ref(), path);
        for (i, gsi) in t.global_secondary_indexes.iter().enumerate() {
            let p = format!("{path}.globalSecondaryIndexes[{i}]");
            self.distinct_keys(&gsi.hash_key, gsi.range_key.as_ref(), &p);
        }
        if let Some(ttl) = &t.ttl_attribute {
            self.attribute_name(ttl, &format!("{path}.ttlAttribute"));
        }
        for (name, kind, at) in &keys {
            match attribute_types.get(name.as_str()) {
                Some((first, first_at)) if first != kind => {
                    let first_at = first_at.clone();
                    self.error(
                        &format!("{at}.type"),
                        format!("attribute `{name}` is {kind:?} here but {first:?} at {first_at}"),
                        "an attribute has one type in every key it is used in",
                    );
                }
                _ => {
                    attribute_types
                        .entry(name.as_str())
                        .or_insert((*kind, at.clone()));
                }
            }
        }
        let enc = format!("{path}.encryption");
        let is_kms = t.encryption.kind == TableEncryptionKind::Kms;
        self.key_choice(
            &enc,
            is_kms,
            &t.encryption.kms_key,
            &t.encryption.kms_key_arn,
        );
        if let Some(ttl) = &t.ttl_attribute
            && let Some((kind, _)) = attribute_types.get(ttl.as_str())
            && *kind != AttributeType::N
        {
            self.error(
                &format!("{path}.ttlAttribute"),
                format!("TTL attribute `{ttl}` is a key of type {kind:?}"),
                "TTL reads a Number attribute of epoch seconds",
            );
        }
    }

    /// DynamoDB attribute names have 1 to 255 bytes.
    fn attribute_name(&mut self, name: &str, path: &str) {
        let field = path.rsplit('.').next().unwrap_or(path);
        if name.is_empty() {
            self.error(
                path,
                format!("`{field}` is empty"),
                "name the attribute; DynamoDB refuses an empty attribute name",
            );
        } else if name.len() > 255 {
            self.error(
                path,
                format!("`{field}` has {} bytes, over DynamoDB's 255", name.len()),
                "shorten the attribute name",
            );
        }
    }

    /// A range key repeating the hash key is refused by CreateTable.
    fn distinct_keys(&mut self, hash: &KeyAttribute, range: Option<&KeyAttribute>, path: &str) {
        if let Some(range) = range
            && range.name == hash.name
        {
            self.error(
                &format!("{path}.rangeKey.name"),
                format!("the range key `{}` is also the hash key", range.name),
                "a key schema names two different attributes; remove `rangeKey` or rename it",
            );
        }
    }
}
