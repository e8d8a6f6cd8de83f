export * from './run-mp.ts';
export * from './temp-project.ts';
