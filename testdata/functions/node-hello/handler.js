'use strict';

const ms = require('ms');

module.exports = async (event, context) => {
  if (event.path === '/custom') {
    return context
      .status(201)
      .headers({ 'X-Kiln': 'custom', 'Content-Type': 'application/json' })
      .succeed({ created: true });
  }
  if (event.method === 'POST') {
    return { received: event.body, type: typeof event.body };
  }
  return `Hello from kiln on Node ${process.versions.node.split('.')[0]}, in ${ms(60000)}`;
};
