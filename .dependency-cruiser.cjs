// Layering rule of ../shared/ARCHITECTURE.md: a layer imports only from layers below it.
// Rank order (lowest first). Folders with the same rank may not import each other.
const layers = [
  ["tensor"],
  ["backend"],
  ["ops"],
  ["io"],
  ["nn"],
  ["schedulers", "models"],
  ["pipelines"],
  ["train"],
  ["server"],
  ["cli"],
];
const rank = new Map(layers.flatMap((names, i) => names.map((n) => [n, i])));
const forbidden = [];
for (const [name, r] of rank) {
  const notAllowed = [...rank].filter(([other, ro]) => other !== name && ro >= r).map(([o]) => o);
  if (notAllowed.length === 0) continue;
  forbidden.push({
    name: `layer-${name}`,
    comment: `src/${name} may only import from layers below it (${layers.map((l) => l.join("|")).join(" < ")})`,
    severity: "error",
    from: { path: `^src/${name}/` },
    to: { path: `^src/(${notAllowed.join("|")})/` },
  });
}
forbidden.push({
  name: "no-circular",
  severity: "error",
  from: {},
  comment: "no import cycles (type-only imports excluded)",
  to: { circular: true, viaOnly: { dependencyTypesNot: ["type-only"] } },
});
module.exports = {
  forbidden,
  options: {
    doNotFollow: { path: "node_modules" },
    tsConfig: { fileName: "tsconfig.json" },
    tsPreCompilationDeps: true,
  },
};
