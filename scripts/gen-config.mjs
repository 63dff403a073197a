// Writes docs/config.md and config/schema.json from the zod schema (run `npm run gen:config`).
import { writeFileSync } from "node:fs";
import { configJsonSchema, configReferenceMarkdown } from "../dist/config/reference.js";

const root = new URL("..", import.meta.url);
writeFileSync(new URL("config/schema.json", root), `${JSON.stringify(configJsonSchema(), null, 2)}\n`);
writeFileSync(new URL("docs/config.md", root), configReferenceMarkdown());
console.log("wrote config/schema.json and docs/config.md");
