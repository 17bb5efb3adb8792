// Types of check-layers.mjs, for the unit test that runs it on a tree of its own.
export const FLOORS: string[][];
export const RUNNER: {
  file: string;
  users: string[];
  starters: string[];
  instead: string;
  moved: Record<string, string>;
};
export function checkLayers(src: string): { files: number; problems: string[] };
