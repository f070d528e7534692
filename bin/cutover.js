#!/usr/bin/env node
// The `cutover` executable: runs the TypeScript CLI through tsx's loader, so the package needs no
// build step (tsx is a runtime dependency for that reason).
'use strict';
require('tsx/cjs/api').register();
require('./cli.ts');
