// Path templates of google.api.http rules, compiled to matchers:
//
//   Template = "/" Segments [ ":" Verb ] ;    Segment  = "*" | "**" | LITERAL | Variable ;
//   Variable = "{" FieldPath [ "=" Segments ] "}" ;
//
// `*` matches one path segment, `**` one or more. A variable without "=" matches one
// segment ({name} is {name=*}); with "=" it may span several ({name=shelves/*/books/*}).

export interface PathVariable {
  /** Dotted proto field path the value is bound to. */
  readonly fieldPath: string;
  /** True when the variable may span several segments (its "/" are kept). */
  readonly multiSegment: boolean;
}

export interface PathTemplate {
  readonly source: string;
  readonly variables: readonly PathVariable[];
  /** The template as an OpenAPI path: each variable as {field.path}. */
  readonly openApiPath: string;
  /** Literal segments: when several templates match a path, the more literal one wins. */
  readonly literalSegments: number;
  /** The raw (still percent-encoded) value of each variable, or undefined when the path does not match. */
  match(pathname: string): string[] | undefined;
}

const fieldPathRe = /^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$/;
const literalRe = /^[^/{}*=:]+$/;

/** Compiles a template; throws on one outside the grammar (annotations are checked at start). */
export function parsePathTemplate(source: string): PathTemplate {
  const fail = (why: string): never => {
    throw new Error(`path template "${source}": ${why}`);
  };
  if (!source.startsWith("/")) fail('must start with "/"');
  // The verb is a ":" after the last segment, outside any variable.
  const verbAt = source.lastIndexOf(":");
  const hasVerb = verbAt > source.lastIndexOf("/") && verbAt > source.lastIndexOf("}");
  const verb = hasVerb ? source.slice(verbAt + 1) : "";
  if (hasVerb && !literalRe.test(verb)) fail(`bad verb "${verb}"`);

  const variables: PathVariable[] = [];
  const regex: string[] = [];
  const openApi: string[] = [];
  let literalSegments = 0;
  for (const segment of splitOutsideBraces(source.slice(1, hasVerb ? verbAt : undefined))) {
    if (segment.startsWith("{") && segment.endsWith("}")) {
      const [fieldPath = "", pattern = "*"] = segment.slice(1, -1).split(/=(.*)/s);
      if (!fieldPathRe.test(fieldPath)) fail(`bad variable "${segment}"`);
      const parts = pattern.split("/");
      const compiled = parts.map((p) => segmentRegex(p) ?? fail(`bad variable pattern "${pattern}"`));
      literalSegments += parts.filter((p) => p !== "*" && p !== "**").length;
      variables.push({ fieldPath, multiSegment: pattern !== "*" });
      regex.push(`(${compiled.join("/")})`);
      openApi.push(`{${fieldPath}}`);
    } else {
      regex.push(segmentRegex(segment) ?? fail(`bad segment "${segment}"`));
      openApi.push(segment);
      if (segment !== "*" && segment !== "**") literalSegments++;
    }
  }
  const suffix = hasVerb ? `:${verb}` : "";
  const matcher = new RegExp(`^/${regex.join("/")}${escapeRegExp(suffix)}$`);
  return {
    source,
    variables,
    openApiPath: `/${openApi.join("/")}${suffix}`,
    literalSegments,
    match(pathname) {
      const m = matcher.exec(pathname);
      return m ? m.slice(1) : undefined;
    },
  };
}

/**
 * Decodes a matched variable value. A multi-segment value keeps its encoded "/" (%2F)
 * so that it stays distinguishable from a separator. Throws URIError on bad encoding.
 */
export function decodePathValue(raw: string, multiSegment: boolean): string {
  return multiSegment ? raw.split("/").map((s) => decodeURIComponent(s.replace(/%2F/gi, "%252F"))).join("/") : decodeURIComponent(raw);
}

function splitOutsideBraces(path: string): string[] {
  const segments: string[] = [];
  let depth = 0;
  let current = "";
  for (const ch of path) {
    if (ch === "{") depth++;
    if (ch === "}") depth--;
    if (ch === "/" && depth === 0) {
      segments.push(current);
      current = "";
    } else {
      current += ch;
    }
  }
  segments.push(current);
  return segments;
}

function segmentRegex(segment: string): string | undefined {
  if (segment === "*") return "[^/]+";
  if (segment === "**") return "[^/]+(?:/[^/]+)*";
  return literalRe.test(segment) ? escapeRegExp(segment) : undefined;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
