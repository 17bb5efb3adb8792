#!/usr/bin/env node
// Thin launcher: everything else is in src/cli.ts (built to dist/).
import { main } from '../dist/cli.js';

process.exitCode = await main(process.argv);
