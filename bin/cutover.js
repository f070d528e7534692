#!/usr/bin/env node
// The `cutover` executable. In a checkout (bin/cli.ts is next to this file) it runs the TypeScript
// CLI through tsx's loader, so no build step is needed and a stale dist/ is never run. In the
// installed package, which ships no TypeScript, it runs the compiled dist/bin/cli.js.
'use strict';
const { existsSync } = require('node:fs');
const { join } = require('node:path');

if (existsSync(join(__dirname, 'cli.ts'))) {
  require('tsx/cjs/api').register();
  require('./cli.ts');
} else {
  require('../dist/bin/cli.js');
}
