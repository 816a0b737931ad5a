// Where pihub is: the project (stages/, overlays/, bases/, package.json) and its engine (build/).
import { fileURLToPath } from 'node:url';

export const PROJECT_DIR = fileURLToPath(new URL('../..', import.meta.url));
export const ENGINE_ROOT = fileURLToPath(new URL('..', import.meta.url));
