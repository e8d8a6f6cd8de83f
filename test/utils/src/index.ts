export * from './docker.ts';
export * from './fixture-micropython.ts';
export * from './fixture-micropython-files.ts';
export * from './run-mp.ts';
export * from './temp-project.ts';
