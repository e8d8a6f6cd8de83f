/**
 * Peter Hinch's asynchronous MQTT client. Its README says it is too large to compile on an ESP8266
 * and must be frozen, which is what this plugin does; the example config is exported beside the
 * firmware as `mqtt_local.py`, to edit and copy to the board's filesystem.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { defineLibrary } from '@mp/core';

export default defineLibrary({
  id: 'mqtt_as',
  title: 'Asynchronous MQTT client (peterhinch/micropython-mqtt)',
  source: { git: 'https://github.com/peterhinch/micropython-mqtt.git', ref: 'master' },
  // Only the client itself: the package folder also holds tests and demos that would waste flash.
  freeze: [{ package: 'mqtt_as', files: ['__init__.py', 'mqtt_v5_properties.py'] }],
  exports: [{ from: 'mqtt_local_example.py', as: 'mqtt_local.py' }],
  // Networked ports it supports, plus unix so frozen code can be compiled and imported on the host.
  ports: ['esp8266', 'esp32', 'rp2', 'stm32', 'unix'],
  nameFragment: 'mqtt-as',
  resolve({ sourceDir }) {
    if (existsSync(join(sourceDir, 'mqtt_as', '__init__.py'))) {
      // mqtt_v5_properties.py arrived with MQTT v5 support; older package layouts lack it.
      const files = ['__init__.py', 'mqtt_v5_properties.py'].filter((f) =>
        existsSync(join(sourceDir, 'mqtt_as', f)),
      );
      return { freeze: [{ package: 'mqtt_as', files }] };
    }
    // Before August 2024 the client was the module mqtt_as/mqtt_as.py and the config mqtt_as/mqtt_local.py.
    return {
      freeze: [{ module: 'mqtt_as.py', base: 'mqtt_as' }],
      exports: [{ from: 'mqtt_as/mqtt_local.py', as: 'mqtt_local.py' }],
    };
  },
});
