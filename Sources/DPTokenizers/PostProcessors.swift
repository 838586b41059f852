// Post-processors: where the special tokens go and which type id each part gets, matching
// BertProcessing, RobertaProcessing, TemplateProcessing, ByteLevel and Sequence. All of them
// reduce to one template for single sequences and one for pairs.

struct Template: Sendable {
    enum Item: Sendable {
        /// Sequence A (`first`) or B, with the type id its tokens get.
        case sequence(first: Bool, typeId: Int32)
        case special(ids: [Int32], typeId: Int32)
    }
    var single: [Item]
    var pair: [Item]

    /// No post-processor: A keeps type id 0 and B gets 1, nothing is added.
    static let identity = Template(single: [.sequence(first: true, typeId: 0)],
                                   pair: [.sequence(first: true, typeId: 0), .sequence(first: false, typeId: 1)])

    /// [CLS] A [SEP] and [CLS] A [SEP] B [SEP], B and its [SEP] with type id 1.
    static func bert(cls: Int32, sep: Int32) -> Template {
        Template(
            single: [.special(ids: [cls], typeId: 0), .sequence(first: true, typeId: 0), .special(ids: [sep], typeId: 0)],
            pair: [.special(ids: [cls], typeId: 0), .sequence(first: true, typeId: 0), .special(ids: [sep], typeId: 0),
                   .sequence(first: false, typeId: 1), .special(ids: [sep], typeId: 1)])
    }

    var addsTokens: Bool { addedTokens(pair: false) + addedTokens(pair: true) > 0 }

    /// How many special tokens the template adds, which truncation leaves room for.
    func addedTokens(pair isPair: Bool) -> Int {
        (isPair ? pair : single).reduce(0) { count, item in
            if case .special(let ids, _) = item { return count + ids.count }
            return count
        }
    }
}

func makePostProcessor(_ json: JSONNode) throws -> Template {
    let type = try json.componentType()
    func idPair(_ key: String) throws -> Int32 {
        let node = try json.required(key)
        let items = try node.array()
        guard items.count == 2 else { throw node.error("expected [token, id]") }
        return Int32(try items[1].int())
    }
    switch type {
    case "BertProcessing":
        return .bert(cls: try idPair("cls"), sep: try idPair("sep"))
    case "RobertaProcessing":
        let cls = try idPair("cls"), sep = try idPair("sep")
        return Template(
            single: [.special(ids: [cls], typeId: 0), .sequence(first: true, typeId: 0), .special(ids: [sep], typeId: 0)],
            pair: [.special(ids: [cls], typeId: 0), .sequence(first: true, typeId: 0), .special(ids: [sep, sep], typeId: 0),
                   .sequence(first: false, typeId: 0), .special(ids: [sep], typeId: 0)])
    case "ByteLevel":
        // It only moves character offsets, which dp-train does not keep.
        return .identity
    case "TemplateProcessing":
        var specials: [String: [Int32]] = [:]
        if let map = try json.optional("special_tokens") {
            for (name, node) in try map.object() {
                specials[name] = try node.required("ids").array().map { Int32(try $0.int()) }
            }
        }
        func items(_ key: String) throws -> [Template.Item] {
            try json.required(key).array().map { node in
                if let s = try node.optional("Sequence") {
                    let id = try s.required("id").string()
                    guard id == "A" || id == "B" else { throw s.error("sequence id must be A or B, got \"\(id)\"") }
                    return .sequence(first: id == "A", typeId: Int32(try s.optionalInt("type_id") ?? 0))
                }
                if let s = try node.optional("SpecialToken") {
                    let id = try s.required("id").string()
                    guard let ids = specials[id] else { throw s.error("\"\(id)\" is not in special_tokens") }
                    return .special(ids: ids, typeId: Int32(try s.optionalInt("type_id") ?? 0))
                }
                throw node.error("expected {\"Sequence\": ...} or {\"SpecialToken\": ...}")
            }
        }
        return Template(single: try items("single"), pair: try items("pair"))
    case "Sequence":
        // At most one member may add tokens; the others (ByteLevel) only touch offsets.
        let members = try json.required("processors").array()
        var result = Template.identity
        var adder: String?
        for node in members {
            let template = try makePostProcessor(node)
            guard template.addsTokens else { continue }
            if let adder { throw node.error("a second post-processor that adds tokens (after \(adder)) is not supported") }
            adder = node.path
            result = template
        }
        return result
    default: throw json.unknownType(type)
    }
}
