#!/usr/bin/env node
// Runs the TypeScript sources through tsx's ESM API, so the package needs no build step.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/run.ts');
