'use strict';

// A function of OpenFaaS's classic node template: the request body comes
// in as a string, and the answer goes out through the callback or, for an
// async handler, as the promise's value.
module.exports = (context, callback) => {
  if (context.startsWith('promise')) {
    return Promise.resolve(`Node ${process.versions.node.split('.')[0]} says, through a promise: ${context}`);
  }
  if (context === 'fail') {
    callback(new Error('failing as asked'));
    return;
  }
  callback(undefined, { status: 'done', said: context });
};
