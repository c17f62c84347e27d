// The sign-in screen's JavaScript: the entry script and what it preloads (the other screens
// are split off). Prints the gzipped total; fails the build above the budget.
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

const BUDGET = 150 * 1024;
const dist = '../platform/kithost/dashboard/dist';
const html = readFileSync(`${dist}/index.html`, 'utf8');
const files = [...html.matchAll(/(?:src|href)="\/admin\/(assets\/[^"]+\.js)"/g)].map((m) => m[1]);
const total = files.reduce((sum, file) => sum + gzipSync(readFileSync(`${dist}/${file}`)).length, 0);
console.log(`sign-in screen JavaScript: ${files.length} files, ${(total / 1024).toFixed(1)} KB gzipped (budget ${BUDGET / 1024} KB)`);
if (total > BUDGET) process.exit(1);
