// @serialport/bindings-interface maps ESM imports to a file without types; resolved from a CommonJS
// module its types are found. Only types cross this file, so nothing of it runs.
export type {
  BindingInterface,
  BindingPortInterface,
  OpenOptions,
  PortInfo,
  PortStatus,
  SetOptions,
  UpdateOptions,
} from '@serialport/bindings-interface';
